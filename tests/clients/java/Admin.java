import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeSet;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.AdminClient;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.ListOffsetsResult.ListOffsetsResultInfo;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;

/**
 * Topic administration, one step per JVM (as kafka-topics.sh runs):
 *   Admin BOOTSTRAP create TOPIC PARTITIONS [k=v]...   prints "created TOPIC"
 *   Admin BOOTSTRAP list                               prints one topic name per line
 *   Admin BOOTSTRAP describe TOPIC                     prints "partitions N" then "config k=v" for
 *                                                      every topic override (non-default)
 *   Admin BOOTSTRAP delete TOPIC                       prints "deleted TOPIC"
 *   Admin BOOTSTRAP offsets TOPIC PARTITION [TS]...    prints "earliest O", "latest O",
 *                                                      "max-timestamp O T" and "at TS O" per TS
 *                                                      (ListOffsets through Admin.listOffsets)
 * On a failed request it prints "error <ExceptionClass>: message" on stderr and exits 1.
 */
public class Admin {
    public static void main(String[] argv) throws Exception {
        Properties p = new Properties();
        p.put("bootstrap.servers", argv[0]);
        p.put("request.timeout.ms", "10000");
        p.put("default.api.timeout.ms", "15000");
        try (AdminClient admin = AdminClient.create(p)) {
            run(admin, argv);
        } catch (ExecutionException e) {
            Throwable c = e.getCause();
            System.err.println("error " + c.getClass().getSimpleName() + ": " + c.getMessage());
            System.exit(1);
        }
    }

    static void run(AdminClient admin, String[] argv) throws Exception {
        switch (argv[1]) {
            case "create": {
                Map<String, String> configs = new HashMap<>();
                for (int i = 4; i < argv.length; i++) {
                    String[] kv = argv[i].split("=", 2);
                    configs.put(kv[0], kv[1]);
                }
                NewTopic t = new NewTopic(argv[2], Integer.parseInt(argv[3]), (short) 1).configs(configs);
                admin.createTopics(List.of(t)).all().get(20, TimeUnit.SECONDS);
                System.out.println("created " + argv[2]);
                break;
            }
            case "list":
                for (String n : new TreeSet<>(admin.listTopics().names().get(20, TimeUnit.SECONDS))) {
                    System.out.println(n);
                }
                break;
            case "describe": {
                TopicDescription d = admin.describeTopics(List.of(argv[2]))
                        .allTopicNames().get(20, TimeUnit.SECONDS).get(argv[2]);
                System.out.println("partitions " + d.partitions().size());
                ConfigResource r = new ConfigResource(ConfigResource.Type.TOPIC, argv[2]);
                Config config = admin.describeConfigs(List.of(r)).all().get(20, TimeUnit.SECONDS).get(r);
                for (ConfigEntry e : config.entries()) {
                    if (e.source() == ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG) {
                        System.out.println("config " + e.name() + "=" + e.value());
                    }
                }
                break;
            }
            case "delete":
                admin.deleteTopics(List.of(argv[2])).all().get(20, TimeUnit.SECONDS);
                System.out.println("deleted " + argv[2]);
                break;
            case "offsets": {
                TopicPartition tp = new TopicPartition(argv[2], Integer.parseInt(argv[3]));
                System.out.println("earliest " + offset(admin, tp, OffsetSpec.earliest()).offset());
                System.out.println("latest " + offset(admin, tp, OffsetSpec.latest()).offset());
                ListOffsetsResultInfo max = offset(admin, tp, OffsetSpec.maxTimestamp());
                System.out.println("max-timestamp " + max.offset() + " " + max.timestamp());
                for (int i = 4; i < argv.length; i++) {
                    long ts = Long.parseLong(argv[i]);
                    System.out.println("at " + ts + " " + offset(admin, tp, OffsetSpec.forTimestamp(ts)).offset());
                }
                break;
            }
            default:
                throw new IllegalArgumentException("unknown command " + argv[1]);
        }
    }

    static ListOffsetsResultInfo offset(AdminClient admin, TopicPartition tp, OffsetSpec spec) throws Exception {
        return admin.listOffsets(Map.of(tp, spec)).partitionResult(tp).get(20, TimeUnit.SECONDS);
    }
}
