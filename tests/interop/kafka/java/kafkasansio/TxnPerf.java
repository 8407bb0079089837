package kafkasansio;

import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Properties;

import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * The cost of a transaction with Kafka's own KafkaProducer: begin, N records, commit, over and
 * over, one transaction at a time (as a consume-transform-produce loop runs them), and the
 * commits per second, records per second and CPU of this JVM per record that gives.
 *
 * Usage: TxnPerf BOOTSTRAP TOPIC --txn-records N --transactions T [--warmup W] [--record-size S]
 *        [--abort-every K] [--transactional-id ID] [--producer-props k=v ...]
 *
 * - W transactions (default 3) run first and are not measured (class loading, JIT, the
 *   coordinator lookup and the partitions' first AddPartitionsToTxn).
 * - With --abort-every K every K-th transaction (the K-th, 2K-th, ...) is flushed, so its records
 *   reach the log, and then aborted: a read_committed consumer must not see them and a
 *   read_uncommitted one must. Values say which: "commit-TXN-I" or "abort-TXN-I", padded with
 *   'x' to --record-size bytes (default 100); no key.
 * - Records go to the topic's partitions by the default (sticky) partitioner.
 *
 * stdout, one line:
 *   TXNPERF txn_records=N transactions=T committed=C aborted=A records=R seconds=S
 *   commits_per_s=X records_per_s=Y avg_txn_ms=M max_txn_ms=M cpu_s=Z cpu_us_per_record=U
 *   cpu_ms_per_txn=V
 * cpu_s is this JVM's process CPU (every thread: sender, GC, JIT) during the measured part.
 */
public class TxnPerf {
    private static void usage() {
        System.err.println("usage: TxnPerf BOOTSTRAP TOPIC --txn-records N --transactions T [--warmup W]"
                + " [--record-size S] [--abort-every K] [--transactional-id ID] [--producer-props k=v ...]");
        System.exit(2);
    }

    private static byte[] value(boolean commit, long txn, int i, int size) {
        byte[] tag = ((commit ? "commit-" : "abort-") + txn + "-" + i).getBytes(StandardCharsets.UTF_8);
        if (tag.length >= size) {
            return tag;
        }
        byte[] v = new byte[size];
        Arrays.fill(v, (byte) 'x');
        System.arraycopy(tag, 0, v, 0, tag.length);
        return v;
    }

    private static long cpuNanos() {
        return ((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean())
                .getProcessCpuTime();
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 2) {
            usage();
        }
        String bootstrap = args[0];
        String topic = args[1];
        int txnRecords = -1;
        long transactions = -1;
        long warmup = 3;
        int size = 100;
        long abortEvery = 0;
        String txnId = "kafkasansio-txnperf-" + ProcessHandle.current().pid();
        Properties p = new Properties();
        for (int i = 2; i < args.length; i++) {
            switch (args[i]) {
                case "--txn-records": txnRecords = Integer.parseInt(args[++i]); break;
                case "--transactions": transactions = Long.parseLong(args[++i]); break;
                case "--warmup": warmup = Long.parseLong(args[++i]); break;
                case "--record-size": size = Integer.parseInt(args[++i]); break;
                case "--abort-every": abortEvery = Long.parseLong(args[++i]); break;
                case "--transactional-id": txnId = args[++i]; break;
                case "--producer-props":
                    while (i + 1 < args.length && !args[i + 1].startsWith("--")) {
                        String kv = args[++i];
                        int eq = kv.indexOf('=');
                        if (eq <= 0) {
                            usage();
                        }
                        p.put(kv.substring(0, eq), kv.substring(eq + 1));
                    }
                    break;
                default: usage();
            }
        }
        if (txnRecords < 1 || transactions < 1) {
            usage();
        }
        p.put("bootstrap.servers", bootstrap);
        p.put("transactional.id", txnId);
        p.put("key.serializer", ByteArraySerializer.class.getName());
        p.put("value.serializer", ByteArraySerializer.class.getName());
        long committed = 0;
        long aborted = 0;
        long maxTxnNs = 0;
        long startNs = 0;
        long cpu0 = 0;
        long cpu;
        double secs;
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p)) {
            producer.initTransactions();
            for (long t = 0; t < warmup + transactions; t++) {
                if (t == warmup) {
                    startNs = System.nanoTime();
                    cpu0 = cpuNanos();
                }
                long t0 = System.nanoTime();
                boolean abort = abortEvery > 0 && (t + 1) % abortEvery == 0;
                producer.beginTransaction();
                for (int i = 0; i < txnRecords; i++) {
                    producer.send(new ProducerRecord<>(topic, null, value(!abort, t, i, size)));
                }
                if (abort) {
                    // Undrained batches are dropped by an abort: flush so the records are in the
                    // log (visible to read_uncommitted) before the abort marker.
                    producer.flush();
                    producer.abortTransaction();
                } else {
                    producer.commitTransaction();
                }
                if (t >= warmup) {
                    maxTxnNs = Math.max(maxTxnNs, System.nanoTime() - t0);
                    if (abort) {
                        aborted++;
                    } else {
                        committed++;
                    }
                }
            }
            // Before close: its cost comes once per producer, not per transaction.
            cpu = cpuNanos() - cpu0;
            secs = (System.nanoTime() - startNs) / 1e9;
        }
        long records = transactions * txnRecords;
        System.out.printf(java.util.Locale.ROOT,
                "TXNPERF txn_records=%d transactions=%d committed=%d aborted=%d records=%d seconds=%.3f"
                        + " commits_per_s=%.1f records_per_s=%.1f avg_txn_ms=%.3f max_txn_ms=%.3f cpu_s=%.3f"
                        + " cpu_us_per_record=%.3f cpu_ms_per_txn=%.3f%n",
                txnRecords, transactions, committed, aborted, records, secs, committed / secs, records / secs,
                secs * 1000.0 / transactions, maxTxnNs / 1e6, cpu / 1e9, cpu / 1e3 / records,
                cpu / 1e6 / transactions);
    }
}
