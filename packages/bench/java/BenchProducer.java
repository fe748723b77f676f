import java.io.BufferedReader;
import java.io.FileReader;
import java.nio.charset.StandardCharsets;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * Writes a benchmark data set to a topic, fast (data generation is not measured, but it should not take
 * longer than the benchmark). Input: one record per line, `key<TAB>json-without-its-closing-brace`; each
 * value is completed with `,"producedAt":<epoch ms at send>}`. Idempotent with at most 5 requests in flight,
 * so the offsets of a partition follow the file order.
 *
 * Usage: java -cp "<kafka lib>/*:<dir>" BenchProducer <bootstrap> <topic> <file>
 */
public final class BenchProducer {
  public static void main(String[] args) throws Exception {
    if (args.length != 3) {
      System.err.println("usage: BenchProducer <bootstrap> <topic> <file>");
      System.exit(2);
    }
    Properties props = new Properties();
    props.put("bootstrap.servers", args[0]);
    props.put("acks", "all");
    props.put("enable.idempotence", "true");
    props.put("max.in.flight.requests.per.connection", "5");
    props.put("linger.ms", "5");
    props.put("batch.size", "262144");
    props.put("buffer.memory", Long.toString(64L * 1024 * 1024));
    props.put("compression.type", "none");
    props.put("partitioner.ignore.keys", "false");
    AtomicReference<Exception> failure = new AtomicReference<>();
    AtomicLong acked = new AtomicLong();
    long sent = 0;
    long started = System.nanoTime();
    try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(props, new ByteArraySerializer(), new ByteArraySerializer());
         BufferedReader reader = new BufferedReader(new FileReader(args[2], StandardCharsets.UTF_8), 1 << 20)) {
      String line;
      while ((line = reader.readLine()) != null && failure.get() == null) {
        int tab = line.indexOf('\t');
        if (tab < 0) continue;
        byte[] key = line.substring(0, tab).getBytes(StandardCharsets.UTF_8);
        String value = line.substring(tab + 1) + ",\"producedAt\":" + System.currentTimeMillis() + "}";
        producer.send(new ProducerRecord<>(args[1], key, value.getBytes(StandardCharsets.UTF_8)), (metadata, error) -> {
          if (error != null) failure.compareAndSet(null, error);
          else acked.incrementAndGet();
        });
        sent += 1;
      }
      producer.flush();
    }
    if (failure.get() != null) {
      System.err.println("BenchProducer failed: " + failure.get());
      System.exit(1);
    }
    long ms = (System.nanoTime() - started) / 1_000_000;
    System.out.println("produced " + acked.get() + " of " + sent + " records in " + ms + " ms");
    if (acked.get() != sent) System.exit(1);
  }
}
