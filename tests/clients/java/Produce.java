import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * A console producer: one record per stdin line, then prints "partition offset" per record.
 *   Produce BOOTSTRAP TOPIC [key.separator=S] [any producer property k=v]...
 * With key.separator the text before the first S is the key. Idempotence is on (the client's
 * default). Exits 1 if any record is not acknowledged within 30 s.
 */
public class Produce {
    public static void main(String[] argv) throws Exception {
        Properties p = new Properties();
        p.put("bootstrap.servers", argv[0]);
        p.put("key.serializer", StringSerializer.class.getName());
        p.put("value.serializer", StringSerializer.class.getName());
        p.put("delivery.timeout.ms", "30000");
        p.put("request.timeout.ms", "10000");
        String sep = null;
        for (int i = 2; i < argv.length; i++) {
            String[] kv = argv[i].split("=", 2);
            if (kv[0].equals("key.separator")) sep = kv[1];
            else p.put(kv[0], kv[1]);
        }
        List<Future<RecordMetadata>> sent = new ArrayList<>();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
            String line;
            while ((line = in.readLine()) != null) {
                String key = null, value = line;
                int at = sep == null ? -1 : line.indexOf(sep);
                if (at >= 0) {
                    key = line.substring(0, at);
                    value = line.substring(at + sep.length());
                }
                sent.add(producer.send(new ProducerRecord<>(argv[1], key, value)));
            }
            producer.flush();
            for (Future<RecordMetadata> f : sent) {
                RecordMetadata m = f.get(30, TimeUnit.SECONDS);
                System.out.println(m.partition() + " " + m.offset());
            }
        }
    }
}
