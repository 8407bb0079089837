package kafkasansio;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.Future;

import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * Produces one record per stdin line with Kafka's own KafkaProducer and prints, per line in
 * input order, "INDEX PARTITION OFFSET" from the RecordMetadata, so the partition the Java
 * producer's default partitioner picks can be compared with ours.
 * Usage: JavaPartitions BOOTSTRAP TOPIC < keys, one per line: lowercase hex of the key bytes,
 * "-" for an empty key, "null" for no key.
 */
public class JavaPartitions {
    private static byte[] unhex(String s) {
        byte[] b = new byte[s.length() / 2];
        for (int i = 0; i < b.length; i++) {
            b[i] = (byte) Integer.parseInt(s.substring(2 * i, 2 * i + 2), 16);
        }
        return b;
    }

    public static void main(String[] args) throws Exception {
        Properties p = new Properties();
        p.put("bootstrap.servers", args[0]);
        p.put("key.serializer", ByteArraySerializer.class.getName());
        p.put("value.serializer", ByteArraySerializer.class.getName());
        p.put("acks", "all");
        String topic = args[1];
        List<Future<RecordMetadata>> fs = new ArrayList<>();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p)) {
            String line;
            int i = 0;
            while ((line = in.readLine()) != null) {
                line = line.trim();
                if (line.isEmpty()) {
                    continue;
                }
                byte[] key = line.equals("null") ? null : line.equals("-") ? new byte[0] : unhex(line);
                byte[] value = ("java-" + i).getBytes(StandardCharsets.UTF_8);
                fs.add(producer.send(new ProducerRecord<>(topic, key, value)));
                i++;
            }
            producer.flush();
            for (int j = 0; j < fs.size(); j++) {
                RecordMetadata md = fs.get(j).get();
                System.out.println(j + " " + md.partition() + " " + md.offset());
            }
        }
    }
}
