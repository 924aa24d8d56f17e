// The elector's API from Java 11+ (java.net.http only). Run without a build step:
//   java LeaderClient.java get        who leads, am I the leader
//   java LeaderClient.java sse [N]    follow changes (stop after N events)
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.Iterator;

public class LeaderClient {
    static String env(String name, String fallback) {
        String value = System.getenv(name);
        return value == null || value.isEmpty() ? fallback : value;
    }

    public static void main(String[] args) throws Exception {
        String path = env("ELECTOR_PATH", "localhost:4040");
        String getUrl = env("ELECTOR_GET_URL", "http://" + path + "/");
        String sseUrl = env("ELECTOR_SSE_URL", "http://" + path + "/sse");
        HttpClient client = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();
        String mode = args.length > 0 ? args[0] : "get";

        if (mode.equals("get")) {
            HttpRequest request = HttpRequest.newBuilder(URI.create(getUrl)).timeout(Duration.ofSeconds(2)).build();
            String body = client.send(request, HttpResponse.BodyHandlers.ofString()).body();
            System.out.println(body.trim());
            // A JSON library would be used in a real app; the field is a plain boolean.
            boolean leader = body.replace(" ", "").contains("\"is_leader\":true");
            System.out.println(leader ? "I am the leader" : "I am a follower");
            return;
        }
        long limit = args.length > 1 ? Long.parseLong(args[1]) : Long.MAX_VALUE;
        HttpRequest request = HttpRequest.newBuilder(URI.create(sseUrl)).header("Accept", "text/event-stream").build();
        Iterator<String> lines = client.send(request, HttpResponse.BodyHandlers.ofLines()).body().iterator();
        long seen = 0;
        while (seen < limit && lines.hasNext()) {
            String line = lines.next();
            if (line.startsWith("data:")) {
                System.out.println("event: " + line.substring(5).trim());
                seen++;
            }
        }
        System.exit(0);  // the stream stays open; do not wait for it
    }
}
