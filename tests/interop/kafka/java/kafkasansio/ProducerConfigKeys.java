package kafkasansio;

import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.config.ConfigDef;
import org.apache.kafka.common.config.types.Password;

/**
 * Prints every key of Kafka's ProducerConfig with its default, one "KEY\tDEFAULT" line each, the
 * default as a properties file would hold it (lists comma separated, no default as an empty
 * value), so that the Rust side can check that a Java property file loads unchanged.
 * Usage: ProducerConfigKeys
 */
public final class ProducerConfigKeys {
    public static void main(String[] args) {
        Map<String, ConfigDef.ConfigKey> keys = new TreeMap<>(ProducerConfig.configDef().configKeys());
        for (ConfigDef.ConfigKey k : keys.values()) {
            System.out.println(k.name + "\t" + render(k.hasDefault() ? k.defaultValue : null));
        }
    }

    private static String render(Object v) {
        if (v == null) return "";
        if (v instanceof List<?> l) {
            StringBuilder b = new StringBuilder();
            for (Object o : l) {
                if (b.length() > 0) b.append(',');
                b.append(o);
            }
            return b.toString();
        }
        if (v instanceof Class<?> c) return c.getName();
        if (v instanceof Password p) return p.value();
        return v.toString();
    }
}
