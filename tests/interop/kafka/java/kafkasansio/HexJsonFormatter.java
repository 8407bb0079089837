package kafkasansio;

import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.MessageFormatter;
import org.apache.kafka.common.header.Header;

/**
 * A formatter for Kafka's ConsoleConsumer that prints each record as one JSON line, bytes in
 * lowercase hex, in the format of tests/interop/consume.py:
 * {"partition":0,"offset":5,"key":"6b","value":null,"headers":[["h","76"],["n",null]],"timestamp":1700000000000}
 * Kafka's DefaultMessageFormatter writes keys and values raw, which binary values (newlines,
 * separators) make ambiguous.
 */
public class HexJsonFormatter implements MessageFormatter {
    private static final char[] HEX = "0123456789abcdef".toCharArray();

    private static void hex(StringBuilder sb, byte[] b) {
        if (b == null) {
            sb.append("null");
            return;
        }
        sb.append('"');
        for (byte x : b) {
            sb.append(HEX[(x >> 4) & 15]).append(HEX[x & 15]);
        }
        sb.append('"');
    }

    private static void str(StringBuilder sb, String s) {
        sb.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '"' || c == '\\') {
                sb.append('\\').append(c);
            } else if (c < 0x20) {
                sb.append(String.format("\\u%04x", (int) c));
            } else {
                sb.append(c);
            }
        }
        sb.append('"');
    }

    @Override
    public void writeTo(ConsumerRecord<byte[], byte[]> r, PrintStream out) {
        StringBuilder sb = new StringBuilder(256);
        sb.append("{\"partition\":").append(r.partition());
        sb.append(",\"offset\":").append(r.offset());
        sb.append(",\"key\":");
        hex(sb, r.key());
        sb.append(",\"value\":");
        hex(sb, r.value());
        sb.append(",\"headers\":[");
        boolean first = true;
        for (Header h : r.headers()) {
            if (!first) {
                sb.append(',');
            }
            first = false;
            sb.append('[');
            str(sb, h.key());
            sb.append(',');
            hex(sb, h.value());
            sb.append(']');
        }
        sb.append("],\"timestamp\":").append(r.timestamp()).append("}\n");
        out.print(sb);
        out.flush();
    }
}
