/*
 * rdkafka_mock: a librdkafka mock cluster as a child process, controlled over
 * stdin, for kafka-sansio's interop tests.
 *
 * Usage:
 *   rdkafka_mock [--brokers N] [--topic NAME:PARTITIONS]... [--debug CONTEXTS]
 *
 * Once the cluster is up (and the topics exist) it prints exactly one line
 *   BOOTSTRAP host:port[,host:port...]
 * on stdout, then reads commands, one per line, from stdin and answers each
 * with one line, `OK` or `ERR <reason>` (stdout is flushed after every line).
 * See tests/interop/README.md for the command list. `quit` or EOF on stdin
 * destroys the cluster and exits 0.
 *
 * Built against Debian's librdkafka-dev 2.0.2 (rdkafka_mock.h): only the
 * functions that header declares are used, so the same source also links
 * against a current librdkafka (build.sh: rdkafka_mock_current), whose
 * signatures for these functions are unchanged.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

/* Kafka protocol ApiKey of Produce. RD_KAFKAP_Produce lives in an internal
 * librdkafka header (rdkafka_protocol.h) that Debian does not ship. */
#define APIKEY_PRODUCE 0

#define MAX_ERRS 256
#define MAX_ARGS (MAX_ERRS + 8)

static void die(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "rdkafka_mock: ");
        vfprintf(stderr, fmt, ap);
        fprintf(stderr, "\n");
        va_end(ap);
        exit(2);
}

static void reply_ok(void) {
        fputs("OK\n", stdout);
        fflush(stdout);
}

static void reply_err(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        fputs("ERR ", stdout);
        vfprintf(stdout, fmt, ap);
        fputc('\n', stdout);
        fflush(stdout);
        va_end(ap);
}

/* Strict decimal integer parse within [lo, hi]. */
static int parse_long(const char *s, long lo, long hi, long *out) {
        char *end;
        long v;
        if (!s || !*s)
                return -1;
        errno = 0;
        v     = strtol(s, &end, 10);
        if (errno || *end || v < lo || v > hi)
                return -1;
        *out = v;
        return 0;
}

static void reply_rd(rd_kafka_resp_err_t err) {
        if (err)
                reply_err("%s: %s", rd_kafka_err2name(err), rd_kafka_err2str(err));
        else
                reply_ok();
}

/* Parses argv[from..argc) as error codes into errs; returns the count or -1. */
static int parse_codes(int argc, char **argv, int from,
                       rd_kafka_resp_err_t *errs) {
        int n = 0;
        for (int i = from; i < argc; i++) {
                long v;
                if (parse_long(argv[i], INT_MIN, INT_MAX, &v)) {
                        reply_err("bad error code '%s'", argv[i]);
                        return -1;
                }
                errs[n++] = (rd_kafka_resp_err_t)v;
        }
        if (n == 0) {
                reply_err("need at least one error code");
                return -1;
        }
        return n;
}

static int handle(rd_kafka_mock_cluster_t *mc, int argc, char **argv) {
        const char *cmd = argv[0];
        long a, b, c;
        rd_kafka_resp_err_t errs[MAX_ERRS];

        if (!strcmp(cmd, "quit") || !strcmp(cmd, "exit")) {
                return 1;

        } else if (!strcmp(cmd, "ping")) {
                reply_ok();

        } else if (!strcmp(cmd, "version")) {
                fprintf(stdout, "OK %s\n", rd_kafka_version_str());
                fflush(stdout);

        } else if (!strcmp(cmd, "bootstrap")) {
                fprintf(stdout, "OK %s\n", rd_kafka_mock_cluster_bootstraps(mc));
                fflush(stdout);

        } else if (!strcmp(cmd, "push_produce_errors")) {
                int n = parse_codes(argc, argv, 1, errs);
                if (n < 0)
                        return 0;
                rd_kafka_mock_push_request_errors_array(mc, APIKEY_PRODUCE,
                                                        (size_t)n, errs);
                reply_ok();

        } else if (!strcmp(cmd, "push_errors")) {
                if (argc < 3 || parse_long(argv[1], 0, INT16_MAX, &a)) {
                        reply_err("usage: push_errors APIKEY CODE [CODE...]");
                        return 0;
                }
                int n = parse_codes(argc, argv, 2, errs);
                if (n < 0)
                        return 0;
                rd_kafka_mock_push_request_errors_array(mc, (int16_t)a,
                                                        (size_t)n, errs);
                reply_ok();

        } else if (!strcmp(cmd, "push_broker_errors")) {
                /* push_broker_errors BROKERID APIKEY CODE:RTT_MS [CODE:RTT_MS...] */
                if (argc < 4 || parse_long(argv[1], 0, INT32_MAX, &a) ||
                    parse_long(argv[2], 0, INT16_MAX, &b)) {
                        reply_err(
                            "usage: push_broker_errors BROKERID APIKEY "
                            "CODE:RTT_MS [CODE:RTT_MS...]");
                        return 0;
                }
                /* Validate everything first so a bad entry pushes nothing. */
                long codes[MAX_ERRS], rtts[MAX_ERRS];
                int n = 0;
                for (int i = 3; i < argc; i++) {
                        char buf[64];
                        char *colon;
                        snprintf(buf, sizeof(buf), "%s", argv[i]);
                        colon = strchr(buf, ':');
                        if (colon)
                                *colon = '\0';
                        if (parse_long(buf, INT_MIN, INT_MAX, &codes[n]) ||
                            (colon ? parse_long(colon + 1, 0, INT_MAX, &rtts[n])
                                   : (rtts[n] = 0, 0))) {
                                reply_err("bad CODE:RTT_MS '%s'", argv[i]);
                                return 0;
                        }
                        n++;
                }
                /* The broker error stack is FIFO; pushing one entry per call
                 * keeps the order given on the command line. */
                for (int i = 0; i < n; i++) {
                        rd_kafka_resp_err_t err =
                            rd_kafka_mock_broker_push_request_error_rtts(
                                mc, (int32_t)a, (int16_t)b, 1,
                                (rd_kafka_resp_err_t)codes[i], (int)rtts[i]);
                        if (err) {
                                reply_rd(err);
                                return 0;
                        }
                }
                reply_ok();

        } else if (!strcmp(cmd, "clear_errors")) {
                if (argc != 2 || parse_long(argv[1], 0, INT16_MAX, &a)) {
                        reply_err("usage: clear_errors APIKEY");
                        return 0;
                }
                rd_kafka_mock_clear_request_errors(mc, (int16_t)a);
                reply_ok();

        } else if (!strcmp(cmd, "broker_down") || !strcmp(cmd, "broker_up")) {
                if (argc != 2 || parse_long(argv[1], -1, INT32_MAX, &a)) {
                        reply_err("usage: %s BROKERID (-1 = all)", cmd);
                        return 0;
                }
                reply_rd(!strcmp(cmd, "broker_down")
                             ? rd_kafka_mock_broker_set_down(mc, (int32_t)a)
                             : rd_kafka_mock_broker_set_up(mc, (int32_t)a));

        } else if (!strcmp(cmd, "set_leader")) {
                if (argc != 4 || parse_long(argv[2], 0, INT32_MAX, &a) ||
                    parse_long(argv[3], -1, INT32_MAX, &b)) {
                        reply_err(
                            "usage: set_leader TOPIC PARTITION BROKERID "
                            "(-1 = leaderless)");
                        return 0;
                }
                reply_rd(rd_kafka_mock_partition_set_leader(
                    mc, argv[1], (int32_t)a, (int32_t)b));

        } else if (!strcmp(cmd, "rtt")) {
                if (argc != 3 || parse_long(argv[1], -1, INT32_MAX, &a) ||
                    parse_long(argv[2], 0, INT_MAX, &b)) {
                        reply_err("usage: rtt BROKERID MS (BROKERID -1 = all)");
                        return 0;
                }
                reply_rd(rd_kafka_mock_broker_set_rtt(mc, (int32_t)a, (int)b));

        } else if (!strcmp(cmd, "create_topic")) {
                if (argc < 3 || argc > 4 ||
                    parse_long(argv[2], 1, 100000, &a) ||
                    (argc == 4 && parse_long(argv[3], 1, 1000, &b))) {
                        reply_err(
                            "usage: create_topic NAME PARTITIONS "
                            "[REPLICATION_FACTOR]");
                        return 0;
                }
                if (argc == 3)
                        b = 1;
                reply_rd(rd_kafka_mock_topic_create(mc, argv[1], (int)a, (int)b));

        } else if (!strcmp(cmd, "topic_error")) {
                if (argc != 3 || parse_long(argv[2], INT_MIN, INT_MAX, &a)) {
                        reply_err("usage: topic_error TOPIC CODE");
                        return 0;
                }
                rd_kafka_mock_topic_set_error(mc, argv[1],
                                              (rd_kafka_resp_err_t)a);
                reply_ok();

        } else if (!strcmp(cmd, "set_apiversion")) {
                if (argc != 4 || parse_long(argv[1], 0, INT16_MAX, &a) ||
                    parse_long(argv[2], -1, INT16_MAX, &b) ||
                    parse_long(argv[3], -1, INT16_MAX, &c)) {
                        reply_err("usage: set_apiversion APIKEY MIN MAX");
                        return 0;
                }
                reply_rd(rd_kafka_mock_set_apiversion(mc, (int16_t)a, (int16_t)b,
                                                      (int16_t)c));

        } else {
                reply_err("unknown command '%s'", cmd);
        }
        return 0;
}

int main(int argc, char **argv) {
        int brokers       = 1;
        const char *debug = NULL;
        const char *topics[256];
        int ntopics = 0;
        char errstr[512];

        for (int i = 1; i < argc; i++) {
                long v;
                if (!strcmp(argv[i], "--brokers") && i + 1 < argc) {
                        if (parse_long(argv[++i], 1, 1000, &v))
                                die("bad --brokers '%s'", argv[i]);
                        brokers = (int)v;
                } else if (!strcmp(argv[i], "--topic") && i + 1 < argc) {
                        if (ntopics == 256)
                                die("too many --topic");
                        topics[ntopics++] = argv[++i];
                } else if (!strcmp(argv[i], "--debug") && i + 1 < argc) {
                        debug = argv[++i];
                } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
                        fprintf(stderr,
                                "usage: %s [--brokers N] [--topic NAME:PARTITIONS]... "
                                "[--debug CONTEXTS]\n",
                                argv[0]);
                        return 0;
                } else {
                        die("unknown or incomplete argument '%s'", argv[i]);
                }
        }

        /* A parent that goes away must not kill us mid-write with SIGPIPE
         * before we clean up; a failed write ends the loop instead. */
        signal(SIGPIPE, SIG_IGN);

        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        if (debug && rd_kafka_conf_set(conf, "debug", debug, errstr,
                                       sizeof(errstr)) != RD_KAFKA_CONF_OK)
                die("debug: %s", errstr);
        /* Without --debug, hide the notice that this hosting handle has no
         * bootstrap.servers; warnings and errors still reach stderr. */
        if (!debug && rd_kafka_conf_set(conf, "log_level", "4", errstr,
                                        sizeof(errstr)) != RD_KAFKA_CONF_OK)
                die("log_level: %s", errstr);
        /* The handle only hosts the mock cluster; it never produces. */
        rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        if (!rk)
                die("rd_kafka_new: %s", errstr);

        rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, brokers);
        if (!mc)
                die("rd_kafka_mock_cluster_new(%d) failed", brokers);

        for (int i = 0; i < ntopics; i++) {
                char name[512];
                long parts;
                const char *colon = strrchr(topics[i], ':');
                if (!colon || colon == topics[i] ||
                    (size_t)(colon - topics[i]) >= sizeof(name) ||
                    parse_long(colon + 1, 1, 100000, &parts))
                        die("bad --topic '%s' (want NAME:PARTITIONS)", topics[i]);
                memcpy(name, topics[i], (size_t)(colon - topics[i]));
                name[colon - topics[i]] = '\0';
                int rf = brokers < 3 ? brokers : 3;
                rd_kafka_resp_err_t err =
                    rd_kafka_mock_topic_create(mc, name, (int)parts, rf);
                if (err)
                        die("topic_create %s: %s", name, rd_kafka_err2str(err));
        }

        printf("BOOTSTRAP %s\n", rd_kafka_mock_cluster_bootstraps(mc));
        fflush(stdout);

        char line[8192];
        while (fgets(line, sizeof(line), stdin)) {
                char *av[MAX_ARGS];
                int ac = 0;
                char *save;
                for (char *tok = strtok_r(line, " \t\r\n", &save);
                     tok && ac < MAX_ARGS;
                     tok = strtok_r(NULL, " \t\r\n", &save))
                        av[ac++] = tok;
                if (ac == 0)
                        continue; /* blank line: no answer */
                if (ac == MAX_ARGS) {
                        reply_err("too many arguments");
                        continue;
                }
                if (handle(mc, ac, av))
                        break;
                if (ferror(stdout))
                        break;
        }

        rd_kafka_mock_cluster_destroy(mc);
        rd_kafka_destroy(rk);
        return 0;
}
