import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * A console consumer without a group: assign + seekToBeginning.
 *   Consume BOOTSTRAP TOPIC PARTITIONS(comma-separated) COUNT TIMEOUT_MS
 * Prints "partition<TAB>offset<TAB>key<TAB>value" per record (key "null" when absent) and exits
 * 0 after COUNT records, or 1 when TIMEOUT_MS passes first.
 */
public class Consume {
    public static void main(String[] argv) {
        Properties p = new Properties();
        p.put("bootstrap.servers", argv[0]);
        p.put("key.deserializer", ByteArrayDeserializer.class.getName());
        p.put("value.deserializer", ByteArrayDeserializer.class.getName());
        p.put("request.timeout.ms", "10000");
        p.put("default.api.timeout.ms", "15000");
        List<TopicPartition> parts = new ArrayList<>();
        for (String s : argv[2].split(",")) parts.add(new TopicPartition(argv[1], Integer.parseInt(s)));
        long want = Long.parseLong(argv[3]);
        long deadline = System.currentTimeMillis() + Long.parseLong(argv[4]);
        long got = 0;
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(p)) {
            c.assign(parts);
            c.seekToBeginning(parts);
            while (got < want && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(200))) {
                    String key = r.key() == null ? "null" : new String(r.key(), StandardCharsets.UTF_8);
                    String value = r.value() == null ? "null" : new String(r.value(), StandardCharsets.UTF_8);
                    System.out.println(r.partition() + "\t" + r.offset() + "\t" + key + "\t" + value);
                    got++;
                }
            }
        }
        System.out.flush();
        if (got < want) {
            System.err.println("consumed " + got + " of " + want + " records before the timeout");
            System.exit(1);
        }
    }
}
