import java.util.Arrays;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.ExecutionException;
import org.apache.kafka.clients.admin.AdminClient;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.ConsumerGroupListing;
import org.apache.kafka.clients.admin.MemberDescription;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.KafkaFuture;
import org.apache.kafka.common.TopicPartition;

/**
 * kafka-consumer-groups.sh-like checks through the Java AdminClient, one step per JVM:
 *   GroupAdmin BOOTSTRAP list              "GROUP<TAB>STATE" per consumer group (listConsumerGroups)
 *   GroupAdmin BOOTSTRAP describe GROUP    "state S", "coordinator N", then per member (sorted)
 *                                          "member CLIENT_ID<TAB>INSTANCE_ID|-<TAB>p,p,..."
 *                                          (topic partitions of its assignment) (describeConsumerGroups)
 *   GroupAdmin BOOTSTRAP offsets GROUP     "TOPIC<TAB>PARTITION<TAB>OFFSET" (listConsumerGroupOffsets)
 *   GroupAdmin BOOTSTRAP delete GROUP...   "deleted G" or "failed G <ExceptionClass>" per group
 *                                          (deleteConsumerGroups); exit 0 either way
 * Any other failed request prints "error <ExceptionClass>: message" on stderr and exits 1.
 */
public class GroupAdmin {
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
            case "list": {
                Collection<ConsumerGroupListing> all = admin.listConsumerGroups().all().get();
                TreeMap<String, String> out = new TreeMap<>();
                for (ConsumerGroupListing g : all) {
                    out.put(g.groupId(), g.state().map(Object::toString).orElse("?"));
                }
                for (Map.Entry<String, String> e : out.entrySet()) System.out.println(e.getKey() + "\t" + e.getValue());
                break;
            }
            case "describe": {
                ConsumerGroupDescription d =
                    admin.describeConsumerGroups(List.of(argv[2])).all().get().get(argv[2]);
                System.out.println("state " + d.state());
                System.out.println("coordinator " + (d.coordinator() == null ? -1 : d.coordinator().id()));
                TreeSet<String> members = new TreeSet<>();
                for (MemberDescription m : d.members()) {
                    TreeSet<Integer> parts = new TreeSet<>();
                    for (TopicPartition tp : m.assignment().topicPartitions()) parts.add(tp.partition());
                    StringBuilder b = new StringBuilder();
                    for (int x : parts) b.append(b.length() == 0 ? "" : ",").append(x);
                    members.add("member " + m.clientId() + "\t" + m.groupInstanceId().orElse("-") + "\t" + b);
                }
                for (String m : members) System.out.println(m);
                break;
            }
            case "offsets": {
                Map<TopicPartition, OffsetAndMetadata> o =
                    admin.listConsumerGroupOffsets(argv[2]).partitionsToOffsetAndMetadata().get();
                TreeMap<String, Long> out = new TreeMap<>();
                for (Map.Entry<TopicPartition, OffsetAndMetadata> e : o.entrySet()) {
                    out.put(e.getKey().topic() + "\t" + e.getKey().partition(), e.getValue().offset());
                }
                for (Map.Entry<String, Long> e : out.entrySet()) System.out.println(e.getKey() + "\t" + e.getValue());
                break;
            }
            case "delete": {
                List<String> groups = Arrays.asList(argv).subList(2, argv.length);
                Map<String, KafkaFuture<Void>> res = admin.deleteConsumerGroups(groups).deletedGroups();
                for (String g : groups) {
                    try {
                        res.get(g).get();
                        System.out.println("deleted " + g);
                    } catch (ExecutionException e) {
                        System.out.println("failed " + g + " " + e.getCause().getClass().getSimpleName());
                    }
                }
                break;
            }
            default:
                throw new IllegalArgumentException("unknown command " + argv[1]);
        }
    }
}
