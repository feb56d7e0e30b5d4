import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Collection;
import java.util.Collections;
import java.util.Properties;
import java.util.TreeSet;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * A consumer-group member for the group tests (a child process the test can stop or SIGKILL):
 *   GroupConsumer BOOTSTRAP GROUP TOPIC [key=value]...
 * Subscribes to TOPIC in GROUP (auto commit off, earliest reset; key=value are consumer configs,
 * plus "max.records=N": stop after N records, and "run.max.ms=T": give up after T ms, default
 * 120000). For every record it prints "REC<TAB>partition<TAB>offset<TAB>key", then commits
 * offset+1 synchronously (printing "COMMIT-FAILED<TAB>partition<TAB>offset<TAB>error" if that
 * fails). Rebalances print "ASSIGNED p,p,..." and "REVOKED p,p,...". A line "stop" on stdin (or
 * stdin closing) stops it after the record in hand: it closes the consumer (LeaveGroup unless
 * static), prints "CLOSED" and exits 0. Every line is flushed at once.
 */
public class GroupConsumer {
    static synchronized void say(String s) {
        System.out.println(s);
        System.out.flush();
    }

    static String parts(Collection<TopicPartition> tps) {
        TreeSet<Integer> s = new TreeSet<>();
        for (TopicPartition tp : tps) s.add(tp.partition());
        StringBuilder b = new StringBuilder();
        for (int p : s) b.append(b.length() == 0 ? "" : ",").append(p);
        return b.toString();
    }

    public static void main(String[] argv) throws Exception {
        Properties p = new Properties();
        p.put("bootstrap.servers", argv[0]);
        p.put("group.id", argv[1]);
        p.put("key.deserializer", ByteArrayDeserializer.class.getName());
        p.put("value.deserializer", ByteArrayDeserializer.class.getName());
        p.put("enable.auto.commit", "false");
        p.put("auto.offset.reset", "earliest");
        p.put("session.timeout.ms", "6000");
        p.put("heartbeat.interval.ms", "300");
        p.put("request.timeout.ms", "10000");
        p.put("default.api.timeout.ms", "15000");
        // The consumer protocol (KIP-848) refuses client-side session settings.
        if (java.util.Arrays.asList(argv).contains("group.protocol=consumer")) {
            p.remove("session.timeout.ms");
            p.remove("heartbeat.interval.ms");
        }
        long maxRecords = Long.MAX_VALUE;
        long runMaxMs = 120000;
        for (int i = 3; i < argv.length; i++) {
            String[] kv = argv[i].split("=", 2);
            if (kv[0].equals("max.records")) maxRecords = Long.parseLong(kv[1]);
            else if (kv[0].equals("run.max.ms")) runMaxMs = Long.parseLong(kv[1]);
            else p.put(kv[0], kv[1]);
        }
        AtomicBoolean stop = new AtomicBoolean(false);
        Thread stdin = new Thread(() -> {
            try (BufferedReader r = new BufferedReader(new InputStreamReader(System.in))) {
                String line;
                while ((line = r.readLine()) != null && !line.trim().equals("stop")) { }
            } catch (Exception e) { }
            stop.set(true);
        });
        stdin.setDaemon(true);
        stdin.start();
        long deadline = System.currentTimeMillis() + runMaxMs;
        long seen = 0;
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(p)) {
            c.subscribe(Collections.singletonList(argv[2]), new ConsumerRebalanceListener() {
                // Incremental protocols assign and revoke parts: OWNED is the whole.
                public void onPartitionsRevoked(Collection<TopicPartition> tps) {
                    say("REVOKED " + parts(tps));
                    java.util.Set<TopicPartition> left = new java.util.HashSet<>(c.assignment());
                    left.removeAll(tps);
                    say("OWNED " + parts(left));
                }
                public void onPartitionsAssigned(Collection<TopicPartition> tps) {
                    say("ASSIGNED " + parts(tps));
                    say("OWNED " + parts(c.assignment()));
                }
            });
            outer:
            while (!stop.get() && seen < maxRecords) {
                if (System.currentTimeMillis() > deadline) {
                    say("TIMEOUT");
                    System.exit(3);
                }
                for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(100))) {
                    String key = r.key() == null ? "null" : new String(r.key(), StandardCharsets.UTF_8);
                    say("REC\t" + r.partition() + "\t" + r.offset() + "\t" + key);
                    TopicPartition tp = new TopicPartition(r.topic(), r.partition());
                    try {
                        c.commitSync(Collections.singletonMap(tp, new OffsetAndMetadata(r.offset() + 1)));
                    } catch (Exception e) {
                        say("COMMIT-FAILED\t" + r.partition() + "\t" + r.offset() + "\t" + e);
                    }
                    seen++;
                    // Stop between records: nothing handed out is left uncommitted.
                    if (stop.get() || seen >= maxRecords) break outer;
                }
            }
        }
        say("CLOSED");
    }
}
