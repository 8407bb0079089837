/*
 * rdkafka_perf: librdkafka C producer benchmark with the command line and the
 * output format of Apache Kafka's kafka-producer-perf-test, for side-by-side
 * comparison with kafka-sansio's producer_perf example.
 *
 *   rdkafka_perf --topic T --num-records N --record-size S --throughput R
 *                --producer-props bootstrap.servers=H:P [k=v ...] [--pacing per-record|java]
 *
 * --throughput -1 sends as fast as the client accepts records; R > 0 sends on
 * an open-loop schedule (record i is due at start + i/R seconds, regardless of
 * how earlier sends went); --pacing java paces as Kafka's tool does instead
 * (while ahead of the rate, each record adds 1/R to a sleep deficit, slept once
 * it reaches 2 ms), as producer_perf's examples/support/pacing.rs does.
 * --producer-props are passed to rd_kafka_conf_set.
 * The payload is S random uppercase letters, reused for every record, with no
 * key (as the Java tool does). Latency is enqueue -> delivery report.
 *
 * Every 5 s a window line, and at the end exactly one total line:
 *   N records sent, X records/sec (Y MB/sec), A ms avg latency, M ms max
 *   latency, P50 ms 50th, P95 ms 95th, P99 ms 99th, P999 ms 99.9th.
 * (MB = 1024*1024 bytes; percentiles are whole ms, as in the Java tool.)
 * Resource use of this process (getrusage) goes to stderr. Exit status 1 when
 * any record failed (failed records are not counted, as in the Java tool),
 * 3 when no delivery report arrived for 60 s (a client that cannot talk to the
 * broker: Debian's librdkafka 2.0.2 cannot parse tansu's ApiVersions v3 answer,
 * use rdkafka_perf_bundled against tansu).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

static int64_t now_us(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void die(const char *msg, const char *detail) {
        fprintf(stderr, "rdkafka_perf: %s%s%s\n", msg, detail ? ": " : "",
                detail ? detail : "");
        exit(2);
}

/* ---- statistics, after Java's ProducerPerformance.Stats ---- */
static uint32_t *lat_ms;  /* one entry per successful record, ms */
static int64_t n_ok, n_err, bytes_ok, lat_sum_us, lat_max_us;
static int64_t win_start_us, win_count, win_bytes, win_lat_sum_us, win_lat_max_us;
static int record_size;
static int64_t last_progress_us; /* last delivery report (or start) */
#define STALL_US (60 * 1000000LL)

/* A client that cannot talk to the broker (e.g. librdkafka 2.0.2 vs tansu,
 * which fails to parse tansu's ApiVersions v3 answer) would otherwise wait
 * for message.timeout.ms or forever: give up after 60 s without progress. */
static void check_stall(rd_kafka_t *rk, int64_t now) {
        if (rd_kafka_outq_len(rk) > 0 && now - last_progress_us > STALL_US) {
                fprintf(stderr,
                        "rdkafka_perf: no delivery report for 60 s with %d "
                        "records outstanding; giving up\n",
                        rd_kafka_outq_len(rk));
                exit(3);
        }
}

static void window_print(int64_t now) {
        double secs = (double)(now - win_start_us) / 1e6;
        if (win_count == 0 || secs <= 0)
                return;
        printf("%" PRId64 " records sent, %.1f records/sec (%.2f MB/sec), "
               "%.1f ms avg latency, %.1f ms max latency.\n",
               win_count, (double)win_count / secs,
               (double)win_bytes / 1024.0 / 1024.0 / secs,
               (double)win_lat_sum_us / 1000.0 / (double)win_count,
               (double)win_lat_max_us / 1000.0);
        fflush(stdout);
        win_start_us = now;
        win_count = win_bytes = win_lat_sum_us = win_lat_max_us = 0;
}

static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
        (void)rk;
        (void)opaque;
        int64_t now = now_us();
        last_progress_us = now;
        if (m->err) {
                if (n_err++ < 10)
                        fprintf(stderr, "rdkafka_perf: delivery failed: %s\n",
                                rd_kafka_err2str(m->err));
                return;
        }
        int64_t lat = now - (int64_t)(intptr_t)m->_private;
        lat_ms[n_ok++] = (uint32_t)(lat / 1000);
        bytes_ok += (int64_t)m->len;
        lat_sum_us += lat;
        if (lat > lat_max_us)
                lat_max_us = lat;
        win_count++;
        win_bytes += (int64_t)m->len;
        win_lat_sum_us += lat;
        if (lat > win_lat_max_us)
                win_lat_max_us = lat;
}

static int cmp_u32(const void *a, const void *b) {
        uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
        return x < y ? -1 : x > y;
}

/* Sleeps until `until` (µs), serving delivery reports while it waits. */
static void wait_until(rd_kafka_t *rk, int64_t until) {
        for (;;) {
                int64_t now = now_us();
                if (now >= until)
                        return;
                int64_t wait_ms = (until - now) / 1000;
                rd_kafka_poll(rk, wait_ms > 0 ? (int)(wait_ms > 10 ? 10 : wait_ms) : 0);
                if (wait_ms == 0) {
                        struct timespec ts = {0, (long)((until - now) * 1000)};
                        nanosleep(&ts, NULL);
                }
        }
}

static void usage(const char *argv0) {
        fprintf(stderr,
                "usage: %s --topic T --num-records N --record-size S "
                "--throughput R --producer-props k=v [k=v ...] [--pacing per-record|java]\n"
                "  --throughput -1: unlimited; R>0: open-loop R records/s\n",
                argv0);
        exit(2);
}

int main(int argc, char **argv) {
        const char *topic = NULL;
        long long num     = -1;
        double throughput = 0;
        int have_tp = 0;
        int java_pacing = 0;
        char errstr[512];
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        int nprops = 0;

        record_size = -1;
        for (int i = 1; i < argc; i++) {
                if (!strcmp(argv[i], "--topic") && i + 1 < argc) {
                        topic = argv[++i];
                } else if (!strcmp(argv[i], "--num-records") && i + 1 < argc) {
                        num = atoll(argv[++i]);
                } else if (!strcmp(argv[i], "--record-size") && i + 1 < argc) {
                        record_size = atoi(argv[++i]);
                } else if (!strcmp(argv[i], "--throughput") && i + 1 < argc) {
                        throughput = atof(argv[++i]);
                        have_tp    = 1;
                } else if (!strcmp(argv[i], "--pacing") && i + 1 < argc) {
                        const char *p = argv[++i];
                        if (!strcmp(p, "java"))
                                java_pacing = 1;
                        else if (strcmp(p, "per-record"))
                                usage(argv[0]);
                } else if (!strcmp(argv[i], "--producer-props")) {
                        while (i + 1 < argc && strncmp(argv[i + 1], "--", 2)) {
                                char *kv = strdup(argv[++i]);
                                char *eq = strchr(kv, '=');
                                if (!eq)
                                        die("--producer-props wants k=v", kv);
                                *eq = '\0';
                                if (rd_kafka_conf_set(conf, kv, eq + 1, errstr,
                                                      sizeof(errstr)) !=
                                    RD_KAFKA_CONF_OK)
                                        die("producer property", errstr);
                                nprops++;
                                free(kv);
                        }
                } else {
                        usage(argv[0]);
                }
        }
        if (!topic || num < 0 || record_size < 0 || !have_tp || nprops == 0)
                usage(argv[0]);

        rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
        rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        if (!rk)
                die("rd_kafka_new", errstr);
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);

        lat_ms = malloc(sizeof(*lat_ms) * (size_t)(num > 0 ? num : 1));
        char *payload = malloc((size_t)record_size + 1);
        if (!lat_ms || !payload)
                die("out of memory", NULL);
        srand(1);
        for (int i = 0; i < record_size; i++)
                payload[i] = (char)('A' + rand() % 26);

        int64_t start = now_us();
        win_start_us  = start;
        last_progress_us = start;
        int64_t next_window = start + 5000000;
        double deficit_us = 0;
        for (long long i = 0; i < num; i++) {
                if (throughput > 0 && java_pacing) {
                        /* Java asks after sending record i-1 whether i-1
                         * records since the start are ahead of the rate. */
                        int64_t now = now_us();
                        double elapsed_s = (double)(now - start) / 1e6;
                        if (i > 0 && elapsed_s > 0 &&
                            (double)(i - 1) / elapsed_s > throughput) {
                                deficit_us += 1e6 / throughput;
                                if (deficit_us >= 2000) {
                                        wait_until(rk, now + (int64_t)deficit_us);
                                        deficit_us = 0;
                                }
                        }
                } else if (throughput > 0) {
                        wait_until(rk, start + (int64_t)((double)i * 1e6 / throughput));
                }
                for (;;) {
                        int64_t t = now_us();
                        if (rd_kafka_produce(rkt, RD_KAFKA_PARTITION_UA,
                                             RD_KAFKA_MSG_F_COPY, payload,
                                             (size_t)record_size, NULL, 0,
                                             (void *)(intptr_t)t) == 0)
                                break;
                        rd_kafka_resp_err_t err = rd_kafka_last_error();
                        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                                die("produce", rd_kafka_err2str(err));
                        rd_kafka_poll(rk, 1);
                        check_stall(rk, now_us());
                }
                rd_kafka_poll(rk, 0);
                if ((i & 1023) == 0) {
                        int64_t now = now_us();
                        if (now >= next_window) {
                                window_print(now);
                                next_window = now + 5000000;
                        }
                }
        }
        while (rd_kafka_outq_len(rk) > 0) {
                rd_kafka_poll(rk, 50);
                int64_t now = now_us();
                check_stall(rk, now);
                if (now >= next_window) {
                        window_print(now);
                        next_window = now + 5000000;
                }
        }
        int64_t end = now_us();

        double secs = (double)(end - start) / 1e6;
        qsort(lat_ms, (size_t)n_ok, sizeof(*lat_ms), cmp_u32);
#define PCT(p) (n_ok ? lat_ms[(size_t)((double)n_ok * (p)) < (size_t)n_ok ? (size_t)((double)n_ok * (p)) : (size_t)n_ok - 1] : 0)
        printf("%" PRId64 " records sent, %.1f records/sec (%.2f MB/sec), "
               "%.2f ms avg latency, %.2f ms max latency, %u ms 50th, "
               "%u ms 95th, %u ms 99th, %u ms 99.9th.\n",
               n_ok, secs > 0 ? (double)n_ok / secs : 0.0,
               secs > 0 ? (double)bytes_ok / 1024.0 / 1024.0 / secs : 0.0,
               n_ok ? (double)lat_sum_us / 1000.0 / (double)n_ok : 0.0,
               (double)lat_max_us / 1000.0, PCT(0.5), PCT(0.95), PCT(0.99),
               PCT(0.999));
        fflush(stdout);

        rd_kafka_topic_destroy(rkt);
        rd_kafka_destroy(rk);

        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        double cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
                     (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
        fprintf(stderr,
                "rdkafka_perf: librdkafka %s, user %.2f s, sys %.2f s, "
                "%.3f us CPU/record, max RSS %ld KiB, failed %" PRId64 "\n",
                rd_kafka_version_str(),
                (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6,
                (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6,
                n_ok ? cpu * 1e6 / (double)n_ok : 0.0, ru.ru_maxrss, n_err);
        free(lat_ms);
        free(payload);
        return n_err ? 1 : 0;
}
