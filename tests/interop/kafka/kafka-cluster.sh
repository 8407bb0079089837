#!/usr/bin/env bash
# A three-node Apache Kafka 4.4.0 KRaft cluster on loopback for interop tests, from Maven jars.
#
#   tests/interop/kafka/kafka-cluster.sh fetch            mvn copies the classpath into target/interop/kafka/libs (skipped when there)
#   tests/interop/kafka/kafka-cluster.sh start            format (once) and start nodes 1..3, wait until all three answer;
#                                                         prints the bootstrap list on stdout (only that)
#   tests/interop/kafka/kafka-cluster.sh stop             SIGTERM every node (controlled shutdown), SIGKILL after 30 s
#   tests/interop/kafka/kafka-cluster.sh kill N           SIGKILL node N (fenced after broker.session.timeout.ms = 3 s)
#   tests/interop/kafka/kafka-cluster.sh pause N | resume N   SIGSTOP / SIGCONT node N (a broker that hangs)
#   tests/interop/kafka/kafka-cluster.sh start-node N     start node N again and wait until it is serving (alias: restart N)
#   tests/interop/kafka/kafka-cluster.sh status           one line per node: "node N up PID 127.0.0.1:PORT" or "node N down"
#   tests/interop/kafka/kafka-cluster.sh bootstrap        prints the bootstrap list
#   tests/interop/kafka/kafka-cluster.sh create-topic NAME PARTITIONS [RF] [config=val ...]   (RF default 3)
#   tests/interop/kafka/kafka-cluster.sh delete-topic NAME
#   tests/interop/kafka/kafka-cluster.sh describe-topic NAME
#   tests/interop/kafka/kafka-cluster.sh consume TOPIC [--isolation-level read_committed|read_uncommitted]
#                                        [--max-messages N] [--timeout-ms MS] [ConsoleConsumer args...]
#       Kafka's ConsoleConsumer from the beginning, one line per record, fields separated by TAB:
#       CreateTime:TS  Partition:P  Offset:O  HEADERS  KEY  VALUE   (HEADERS: k:v,k:v or NO_HEADERS)
#   tests/interop/kafka/kafka-cluster.sh consume-json TOPIC [--timeout-ms MS] [ConsoleConsumer args...]
#       the same consumer with kafkasansio.HexJsonFormatter: one JSON line per record, bytes in hex,
#       as tests/interop/consume.py prints them (stops after --timeout-ms without a record, default 8000)
#   tests/interop/kafka/kafka-cluster.sh build-java       javac java/kafkasansio/*.java into target/interop/kafka/classes
#                                                         (skipped when the classes are newer than the sources)
#   tests/interop/kafka/kafka-cluster.sh partitions TOPIC < KEYS   kafkasansio.JavaPartitions: Kafka's KafkaProducer
#                                                         sends one record per key line, prints "INDEX PARTITION OFFSET"
#   tests/interop/kafka/kafka-cluster.sh perf ARGS...     org.apache.kafka.tools.ProducerPerformance --bootstrap-server B ARGS
#   tests/interop/kafka/kafka-cluster.sh txn-perf TOPIC ARGS...  kafkasansio.TxnPerf: Kafka's KafkaProducer runs
#                                                         transactions of --txn-records N, prints commits/s and CPU
#   tests/interop/kafka/kafka-cluster.sh features         FeatureCommand describe: every feature's finalized level
#   tests/interop/kafka/kafka-cluster.sh txn-version      the finalized transaction.version (one number; fails when
#                                                         the three nodes disagree)
#   tests/interop/kafka/kafka-cluster.sh set-txn-version N   upgrade or downgrade transaction.version to N (0-2;
#                                                         format finalizes 2, and 4.4 allows 2 -> 1 -> 2 live) and
#                                                         wait until every node reports N. Clients read the level
#                                                         from ApiVersions: only connections made after it count.
#   tests/interop/kafka/kafka-cluster.sh describe-txn ID  TransactionsCommand describe: coordinator, producer id and
#                                                         epoch, state of transactional id ID (TAB-separated)
#   tests/interop/kafka/kafka-cluster.sh java CLASS ARGS  any main class with the Kafka classpath (tools logging)
#   tests/interop/kafka/kafka-cluster.sh classpath        prints the classpath (libs/*), e.g. for javac
#   tests/interop/kafka/kafka-cluster.sh secure-env       KEY=VALUE lines: the secured listeners' bootstrap lists
#                                                         (KAFKA_SANSIO_KAFKA_SSL, _SASL_SSL, _SASL_PLAINTEXT, _BADHOST,
#                                                         _EXPIRED), the certificate directory (_TLS), users, passwords
#   tests/interop/kafka/kafka-cluster.sh certs            makes the test certificates (start does it when missing)
#   tests/interop/kafka/kafka-cluster.sh client-config PROFILE   writes and prints a Java client properties file
#   tests/interop/kafka/kafka-cluster.sh produce TOPIC    Kafka's console producer, one record per stdin line
#       consume, consume-json, perf and produce take `--listener PROFILE` first to go through a secured
#       listener: ssl (client certificate), sasl_ssl-scram, sasl_ssl-plain, sasl_plaintext-scram,
#       sasl_plaintext-plain (SCRAM means SCRAM-SHA-512; see "secured listeners" below)
#
# State: target/interop/kafka/{libs,classes,config,nodeN/{data,stdout.log,pid}}. Ports: node N
# listens on 127.0.0.1:$((KAFKA_PORT_BASE+N)) (clients), $((KAFKA_PORT_BASE+10+N)) (controller) and
# $((KAFKA_PORT_BASE+20+N)) to $((KAFKA_PORT_BASE+60+N)) (the secured listeners, below);
# KAFKA_PORT_BASE defaults to 29100, below the kernel's ephemeral range (32768-60999), where an
# outgoing connection can hold a node's port. Idempotent: `start` with all three nodes up and
# answering is a no-op that prints the bootstrap list again; storage is formatted only when
# nodeN/data has no meta.properties or was formatted from other properties or SCRAM users
# (nodeN/formatted.sha256), and running nodes started from other properties or certificates
# (nodeN/launched.sha256) are restarted. JAVA (default: java on PATH, 17+) picks the JVM.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
state="$root/target/interop/kafka"
libs="$state/libs"
classes="$state/classes"
conf="$state/config"
JAVA="${JAVA:-java}"
PORT_BASE="${KAFKA_PORT_BASE:-29100}"
NODES="1 2 3"
# A fixed cluster id (a base64 UUID as StorageTool random-uuid prints) so that a re-format of one
# node's directory joins the same cluster.
CLUSTER_ID="a2Fma2Etc2Fuc2lvLWsAAA"
START_TIMEOUT="${KAFKA_START_TIMEOUT:-180}"
# Three brokers, a tool JVM and the test share 2 cores: small heaps, one GC thread each.
NODE_JVM="-Xms384m -Xmx384m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:ParallelGCThreads=1 -XX:ConcGCThreads=1 -XX:CICompilerCount=2 -Djava.awt.headless=true"
# Short-lived tools start fast with C1 only; the perf tool gets bin/kafka-producer-perf-test.sh's
# heap and kafka-run-class.sh's JVM flags, so it measures the Java producer as users run it.
TOOL_JVM="-Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:CICompilerCount=1 -Duser.language=en -Duser.country=US"
PERF_JVM="-Xmx512m -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -XX:MaxInlineLevel=15 -Duser.language=en -Duser.country=US"

say() { echo "kafka-cluster: $*" >&2; }
die() { say "$*"; exit 1; }

bport() { echo $((PORT_BASE + $1)); }
cport() { echo $((PORT_BASE + 10 + $1)); }
bootstrap() { local n s=""; for n in $NODES; do s="$s${s:+,}127.0.0.1:$(bport "$n")"; done; echo "$s"; }

# ---- secured listeners (issue 19) ----------------------------------------------------------
# Each node also listens on these, next to the unchanged PLAINTEXT one (inter-broker traffic
# stays on PLAINTEXT):
#   SSL             PORT_BASE+20+N  TLS, client certificate required (ssl.client.auth=required)
#   SASL_SSL        PORT_BASE+30+N  TLS + SASL SCRAM-SHA-512 or PLAIN, no client certificate
#   SASL_PLAINTEXT  PORT_BASE+40+N  SASL SCRAM-SHA-256, SCRAM-SHA-512 or PLAIN; a session lasts
#                                   connections.max.reauth.ms=$REAUTH_MS (clients re-authenticate)
#   BADHOST         PORT_BASE+50+N  TLS with a certificate from the CA for $WRONG_HOST only
#   EXPIRED         PORT_BASE+60+N  TLS with a certificate from the CA that expired in 2021
# Certificates (PEM, RSA 2048) are made with openssl into target/interop/kafka/tls/ on the first
# start (again when the CA has less than a day left). Users: $USER_NAME/$USER_PASSWORD for all
# three mechanisms (the SCRAM ones written by StorageTool format --add-scram, the PLAIN ones in
# the listeners' JAAS config), $USER2_NAME/$USER2_PASSWORD for SCRAM-SHA-512 and PLAIN.
SECURED="SSL SASL_SSL SASL_PLAINTEXT BADHOST EXPIRED"
tls="$state/tls"
KEY_PASSWORD="kafka-sansio-key-pass"
WRONG_HOST="wrong-host.invalid"
USER_NAME="alice"
USER_PASSWORD="alice-secret"
USER2_NAME="bob"
USER2_PASSWORD="bob-secret"
REAUTH_MS=10000
lport() {
    case "$1" in
    SSL) echo $((PORT_BASE + 20 + $2)) ;;
    SASL_SSL) echo $((PORT_BASE + 30 + $2)) ;;
    SASL_PLAINTEXT) echo $((PORT_BASE + 40 + $2)) ;;
    BADHOST) echo $((PORT_BASE + 50 + $2)) ;;
    EXPIRED) echo $((PORT_BASE + 60 + $2)) ;;
    *) die "unknown listener $1" ;;
    esac
}
lbootstrap() { local n s=""; for n in $NODES; do s="$s${s:+,}127.0.0.1:$(lport "$1" "$n")"; done; echo "$s"; }
# StorageTool's arguments that create the SCRAM users, one a line.
scram_args() {
    local m
    for m in SCRAM-SHA-256 SCRAM-SHA-512; do
        printf '%s\n' --add-scram "$m=[name=$USER_NAME,password=$USER_PASSWORD]"
    done
    printf '%s\n' --add-scram "SCRAM-SHA-512=[name=$USER2_NAME,password=$USER2_PASSWORD]"
}

# An openssl CA: $tls/NAME.pem and NAME.key, self-signed, its database in $tls/NAME-db.
make_ca() {
    local name="$1" cn="$2" db="$tls/$1-db"
    mkdir -p "$db/new"
    : >"$db/index.txt"
    echo 1000 >"$db/serial"
    cat >"$db/ca.cnf" <<CNF
[ca]
default_ca = this
[this]
database = $db/index.txt
new_certs_dir = $db/new
serial = $db/serial
certificate = $tls/$name.pem
private_key = $tls/$name.key
default_md = sha256
policy = any
unique_subject = no
copy_extensions = none
[any]
commonName = supplied
[req]
distinguished_name = dn
[dn]
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
CNF
    openssl req -x509 -new -newkey rsa:2048 -nodes -keyout "$tls/$name.key" -out "$tls/$name.pem" \
        -subj "/CN=$cn" -days 3650 -config "$db/ca.cnf" -extensions v3_ca 2>/dev/null
}

# A leaf certificate signed by CA, valid from START to END (YYYYMMDDHHMMSSZ): NAME.crt and
# NAME.key (unencrypted PKCS#8); NAME.pem, the key and the chain (librdkafka-style
# ssl.certificate.location/ssl.key.location, or an unencrypted PEM keystore); NAME-keystore.pem,
# the key encrypted with $KEY_PASSWORD and the chain (Java's file-based PEM keystore wants
# ssl.key.password).
make_leaf() {
    local name="$1" ca="$2" cn="$3" san="$4" start="$5" end="$6" db="$tls/$2-db"
    cat >"$tls/$name.ext" <<EXT
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth,clientAuth
subjectAltName = $san
EXT
    openssl req -new -newkey rsa:2048 -nodes -keyout "$tls/$name.key" -out "$tls/$name.csr" \
        -subj "/CN=$cn" 2>/dev/null
    openssl ca -batch -notext -config "$db/ca.cnf" -in "$tls/$name.csr" -out "$tls/$name.crt" \
        -startdate "$start" -enddate "$end" -extfile "$tls/$name.ext" 2>/dev/null
    cat "$tls/$name.key" "$tls/$name.crt" "$tls/$ca.pem" >"$tls/$name.pem"
    openssl pkcs8 -topk8 -in "$tls/$name.key" -v1 PBE-SHA1-3DES -passout "pass:$KEY_PASSWORD" \
        -out "$tls/$name.enc.key"
    cat "$tls/$name.enc.key" "$tls/$name.crt" "$tls/$ca.pem" >"$tls/$name-keystore.pem"
    rm -f "$tls/$name.csr" "$tls/$name.ext" "$tls/$name.enc.key"
}

make_certs() {
    if [ -f "$tls/.made" ] && openssl x509 -checkend 86400 -noout -in "$tls/ca.pem" >/dev/null 2>&1; then
        return
    fi
    command -v openssl >/dev/null 2>&1 || die "openssl not on PATH (it makes the TLS listeners' certificates)"
    say "making test certificates in $tls"
    rm -rf "$tls"
    mkdir -p "$tls"
    local now later
    now="$(date -u -d '-1 hour' +%Y%m%d%H%M%SZ)"
    later="$(date -u -d '+825 days' +%Y%m%d%H%M%SZ)"
    make_ca ca "kafka-sansio test CA"
    make_ca rogue-ca "kafka-sansio untrusted CA"
    make_leaf broker ca localhost "DNS:localhost,IP:127.0.0.1" "$now" "$later"
    make_leaf client ca client "DNS:client" "$now" "$later"
    make_leaf wronghost ca "$WRONG_HOST" "DNS:$WRONG_HOST" "$now" "$later"
    make_leaf expired ca localhost "DNS:localhost,IP:127.0.0.1" 20200101000000Z 20210101000000Z
    make_leaf rogue-client rogue-ca client "DNS:client" "$now" "$later"
    touch "$tls/.made"
}

# The broker settings of the secured listeners (part of every node's properties).
secured_config() {
    local plain="org.apache.kafka.common.security.plain.PlainLoginModule required user_$USER_NAME=\"$USER_PASSWORD\" user_$USER2_NAME=\"$USER2_PASSWORD\";"
    local scram="org.apache.kafka.common.security.scram.ScramLoginModule required;"
    cat <<PROPS
# Secured listeners: TLS from PEM files (a file-based PEM keystore holds an encrypted key).
ssl.keystore.type=PEM
ssl.keystore.location=$tls/broker-keystore.pem
ssl.key.password=$KEY_PASSWORD
ssl.truststore.type=PEM
ssl.truststore.location=$tls/ca.pem
ssl.client.auth=none
listener.name.ssl.ssl.client.auth=required
listener.name.badhost.ssl.keystore.location=$tls/wronghost-keystore.pem
listener.name.expired.ssl.keystore.location=$tls/expired-keystore.pem
listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512,PLAIN
listener.name.sasl_ssl.plain.sasl.jaas.config=$plain
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=$scram
listener.name.sasl_plaintext.sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512,PLAIN
listener.name.sasl_plaintext.plain.sasl.jaas.config=$plain
listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config=$scram
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=$scram
listener.name.sasl_plaintext.connections.max.reauth.ms=$REAUTH_MS
PROPS
}

# Java client properties for PROFILE (ssl, sasl_ssl-scram, sasl_ssl-plain, sasl_plaintext-scram,
# sasl_plaintext-plain) in config/client-PROFILE.properties; sets $client_bootstrap and
# $client_config.
client_profile() {
    local listener mech=""
    case "$1" in
    ssl) listener=SSL ;;
    sasl_ssl-scram) listener=SASL_SSL mech=SCRAM-SHA-512 ;;
    sasl_ssl-plain) listener=SASL_SSL mech=PLAIN ;;
    sasl_plaintext-scram) listener=SASL_PLAINTEXT mech=SCRAM-SHA-512 ;;
    sasl_plaintext-plain) listener=SASL_PLAINTEXT mech=PLAIN ;;
    *) die "unknown client profile $1 (ssl, sasl_ssl-scram, sasl_ssl-plain, sasl_plaintext-scram, sasl_plaintext-plain)" ;;
    esac
    mkdir -p "$conf"
    client_bootstrap="$(lbootstrap "$listener")"
    client_config="$conf/client-$1.properties"
    {
        echo "security.protocol=$listener"
        if [ "$listener" != SASL_PLAINTEXT ]; then
            echo "ssl.truststore.type=PEM"
            echo "ssl.truststore.location=$tls/ca.pem"
        fi
        if [ "$listener" = SSL ]; then
            echo "ssl.keystore.type=PEM"
            echo "ssl.keystore.location=$tls/client-keystore.pem"
            echo "ssl.key.password=$KEY_PASSWORD"
        fi
        case "$mech" in
        PLAIN)
            echo "sasl.mechanism=PLAIN"
            echo "sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"$USER_NAME\" password=\"$USER_PASSWORD\";"
            ;;
        SCRAM-*)
            echo "sasl.mechanism=$mech"
            echo "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"$USER_NAME\" password=\"$USER_PASSWORD\";"
            ;;
        esac
    } >"$client_config"
}

cmd_secure_env() {
    local l
    for l in $SECURED; do echo "KAFKA_SANSIO_KAFKA_$l=$(lbootstrap "$l")"; done
    echo "KAFKA_SANSIO_KAFKA_TLS=$tls"
    echo "KAFKA_SANSIO_KAFKA_KEY_PASSWORD=$KEY_PASSWORD"
    echo "KAFKA_SANSIO_KAFKA_WRONG_HOST=$WRONG_HOST"
    echo "KAFKA_SANSIO_KAFKA_USER=$USER_NAME"
    echo "KAFKA_SANSIO_KAFKA_PASSWORD=$USER_PASSWORD"
    echo "KAFKA_SANSIO_KAFKA_USER2=$USER2_NAME"
    echo "KAFKA_SANSIO_KAFKA_PASSWORD2=$USER2_PASSWORD"
    echo "KAFKA_SANSIO_KAFKA_REAUTH_MS=$REAUTH_MS"
}
# ---- end of secured listeners ---------------------------------------------------------------

accepting() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A live, non-zombie process running kafka.Kafka (kill -0 is fooled by unreaped zombies).
pid_of() { cat "$state/node$1/pid" 2>/dev/null || true; }
pid_alive() {
    local st
    [ -r "/proc/$1/stat" ] || return 1
    st="$(sed 's/^.*) //' "/proc/$1/stat" | cut -d' ' -f1)"
    [ "$st" != Z ]
}
alive() {
    local p
    p="$(pid_of "$1")"
    [ -n "$p" ] && pid_alive "$p" && tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q ' kafka\.Kafka '
}
# Serving: "Kafka Server started" logged by this process (the broker is unfenced then) and the
# client port accepts.
serving() { alive "$1" && grep -q "Kafka Server started" "$state/node$1/stdout.log" 2>/dev/null && accepting "$(bport "$1")"; }

tool() {
    local cls="$1"
    shift
    # shellcheck disable=SC2086
    "$JAVA" $TOOL_JVM -Dlog4j2.configurationFile="$here/tools-log4j2.xml" -cp "$libs/*:$classes" "$cls" "$@"
}

cmd_build_java() {
    have_libs || cmd_fetch
    local src newest
    src="$here/java/kafkasansio"
    newest="$(ls -t "$src"/*.java | head -n1)"
    if [ -f "$classes/kafkasansio/.built" ] && [ "$classes/kafkasansio/.built" -nt "$newest" ]; then
        return
    fi
    local javac="javac"
    [ "$JAVA" != java ] && javac="$(dirname "$JAVA")/javac"
    rm -rf "$classes"
    mkdir -p "$classes"
    "$javac" -nowarn -cp "$libs/*" -d "$classes" "$src"/*.java >&2
    touch "$classes/kafkasansio/.built"
}

have_libs() { [ -f "$libs/kafka_2.13-4.4.0.jar" ] && [ -f "$libs/kafka-tools-4.4.0.jar" ] && [ -f "$libs/log4j-slf4j-impl-2.25.5.jar" ]; }

cmd_fetch() {
    if have_libs; then
        say "jars present in $libs"
        return
    fi
    command -v mvn >/dev/null 2>&1 || die "mvn not on PATH"
    rm -rf "$libs"
    mkdir -p "$state"
    say "fetching Kafka 4.4.0 jars with Maven"
    mvn -B -q -f "$here/pom.xml" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$libs" >&2
    have_libs || die "jars missing after mvn"
    # slf4j-api 2 next to the SLF4J-1 binding makes logging NOP: the broker would log nothing.
    if ls "$libs"/slf4j-api-2*.jar >/dev/null 2>&1; then die "slf4j-api 2.x on the classpath"; fi
    say "$(ls "$libs" | wc -l) jars; $(tool kafka.Kafka --version 2>&1 | head -n1)"
}

write_config() {
    local n="$1" voters="" m l ls=""
    for m in $NODES; do voters="$voters${voters:+,}$m@127.0.0.1:$(cport "$m")"; done
    ls="PLAINTEXT://127.0.0.1:$(bport "$n"),CONTROLLER://127.0.0.1:$(cport "$n")"
    for l in $SECURED; do ls="$ls,$l://127.0.0.1:$(lport "$l" "$n")"; done
    mkdir -p "$conf" "$state/node$n/data"
    cat >"$conf/node$n.properties" <<EOF
process.roles=broker,controller
node.id=$n
controller.quorum.voters=$voters
listeners=$ls
advertised.listeners=$ls
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_SSL:SASL_SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,BADHOST:SSL,EXPIRED:SSL
$(secured_config)
log.dirs=$state/node$n/data
num.partitions=3
default.replication.factor=3
auto.create.topics.enable=false
delete.topic.enable=true
offsets.topic.replication.factor=3
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
transaction.state.log.num.partitions=3
share.coordinator.state.topic.replication.factor=3
share.coordinator.state.topic.min.isr=2
group.initial.rebalance.delay.ms=0
# The tests' records carry timestamps from 2023: time-based retention would delete them within
# log.retention.check.interval.ms (5 min) of their append.
log.retention.ms=-1
log.retention.bytes=-1
# A SIGKILLed node is fenced (its leaders moved) after 3 s instead of 9 s.
broker.session.timeout.ms=3000
broker.heartbeat.interval.ms=500
# Small box: fewer threads, and the cleaner's dedupe buffer (128 MiB by default) is allocated
# at startup from the heap.
num.network.threads=2
num.io.threads=2
num.replica.fetchers=1
num.recovery.threads.per.data.dir=1
background.threads=2
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=8388608
EOF
}

# What a node's storage was formatted from (its properties and the SCRAM users), and what a
# running node was started with (its properties and the certificates it serves).
format_inputs() { cat "$conf/node$1.properties"; scram_args; }
launch_inputs() { cat "$conf/node$1.properties" "$tls"/*.pem; }
sha() { sha256sum | cut -d' ' -f1; }

# Formats node N's storage unless it was formatted from the same inputs: SCRAM users exist only
# when written at format time, so a changed user list or configuration formats it again.
format_node() {
    local n="$1" d="$state/node$1" want args=()
    write_config "$n"
    want="$(format_inputs "$n" | sha)"
    if [ -f "$d/data/meta.properties" ]; then
        [ "$(cat "$d/formatted.sha256" 2>/dev/null)" = "$want" ] && return
        say "node $n: configuration or SCRAM users changed since it was formatted; formatting again (its topics are lost)"
        rm -rf "$d/data"
        mkdir -p "$d/data"
    fi
    say "formatting node $n"
    mapfile -t args < <(scram_args)
    tool kafka.tools.StorageTool format -t "$CLUSTER_ID" -c "$conf/node$n.properties" "${args[@]}" >&2
    echo "$want" >"$d/formatted.sha256"
}

launch() {
    local n="$1" d="$state/node$1"
    [ -f "$d/stdout.log" ] && mv "$d/stdout.log" "$d/stdout.log.prev"
    # shellcheck disable=SC2086
    nohup "$JAVA" $NODE_JVM -Dlog4j2.configurationFile="$here/log4j2.xml" -Dkafka.logs.dir="$d" \
        -cp "$libs/*" kafka.Kafka "$conf/node$n.properties" >"$d/stdout.log" 2>&1 </dev/null &
    echo $! >"$d/pid"
    launch_inputs "$n" | sha >"$d/launched.sha256"
    say "node $n started (pid $!), log $d/stdout.log"
}

wait_serving() {
    local n t=0 pending
    while :; do
        pending=""
        for n in "$@"; do
            if ! serving "$n"; then
                alive "$n" || { tail -n 30 "$state/node$n/stdout.log" >&2 || true; die "node $n exited during startup"; }
                pending="$pending $n"
            fi
        done
        [ -z "$pending" ] && break
        [ "$t" -ge "$START_TIMEOUT" ] && die "nodes$pending not serving after ${START_TIMEOUT}s (logs in $state/nodeN/stdout.log)"
        sleep 1
        t=$((t + 1))
    done
    say "nodes $* serving after ${t}s"
}

cmd_start() {
    local n p todo="" stale=""
    have_libs || cmd_fetch
    make_certs
    for n in $NODES; do
        write_config "$n"
        if alive "$n" && [ "$(cat "$state/node$n/launched.sha256" 2>/dev/null)" != "$(launch_inputs "$n" | sha)" ]; then
            stale="$stale $n"
        fi
    done
    if [ -n "$stale" ]; then
        say "nodes$stale run with another configuration or other certificates: restarting the cluster"
        cmd_stop
    fi
    for n in $NODES; do
        serving "$n" || todo="$todo $n"
    done
    if [ -z "$todo" ]; then
        say "cluster already running"
        bootstrap
        return
    fi
    local fmt=()
    for n in $todo; do
        if alive "$n"; then
            continue # starting up: wait for it below
        fi
        if accepting "$(bport "$n")" || accepting "$(cport "$n")"; then
            die "port $(bport "$n") or $(cport "$n") taken by another process"
        fi
        # One StorageTool JVM per node, in parallel: each takes seconds to start.
        format_node "$n" &
        fmt+=($!)
    done
    for p in "${fmt[@]}"; do
        wait "$p" || die "formatting failed"
    done
    # Combined nodes block in startup until a quorum majority exists, so all are launched before
    # any is waited for.
    for n in $todo; do
        alive "$n" || launch "$n"
    done
    # shellcheck disable=SC2086
    wait_serving $NODES
    bootstrap
}

check_node() { case "${1:-}" in 1 | 2 | 3) ;; *) die "node must be 1, 2 or 3" ;; esac; }

cmd_start_node() {
    check_node "$1"
    if serving "$1"; then
        say "node $1 already serving"
        return
    fi
    make_certs
    alive "$1" || { format_node "$1"; launch "$1"; }
    wait_serving "$1"
}

cmd_kill() {
    check_node "$1"
    alive "$1" || { say "node $1 not running"; return; }
    local p
    p="$(pid_of "$1")"
    kill -KILL "$p"
    while pid_alive "$p"; do sleep 0.1; done
    say "node $1 (pid $p) killed"
}

# SIGSTOP node N: its sockets stay open and its kernel still accepts connections, but it
# answers nothing (a broker hung mid-handshake); `kill N` or `resume N` ends that.
cmd_pause() {
    check_node "$1"
    alive "$1" || die "node $1 not running"
    kill -STOP "$(pid_of "$1")"
    say "node $1 (pid $(pid_of "$1")) stopped with SIGSTOP"
}

cmd_resume() {
    check_node "$1"
    alive "$1" || die "node $1 not running"
    kill -CONT "$(pid_of "$1")"
    say "node $1 (pid $(pid_of "$1")) continued"
}

cmd_stop() {
    local n p pids="" t=0
    for n in $NODES; do
        if alive "$n"; then
            p="$(pid_of "$n")"
            kill -TERM "$p"
            pids="$pids $p"
        fi
        rm -f "$state/node$n/pid"
    done
    for p in $pids; do
        while pid_alive "$p"; do
            if [ "$t" -ge 300 ]; then
                say "pid $p alive 30 s after SIGTERM; SIGKILL"
                kill -KILL "$p" 2>/dev/null || true
                break
            fi
            sleep 0.1
            t=$((t + 1))
        done
    done
    say "stopped"
}

cmd_status() {
    local n
    for n in $NODES; do
        if serving "$n"; then
            echo "node $n up $(pid_of "$n") 127.0.0.1:$(bport "$n")"
        elif alive "$n"; then
            echo "node $n starting $(pid_of "$n") 127.0.0.1:$(bport "$n")"
        else
            echo "node $n down"
        fi
    done
}

cmd_create_topic() {
    [ $# -ge 2 ] || die "create-topic NAME PARTITIONS [RF] [config=val ...]"
    local name="$1" parts="$2" rf=3 args=()
    shift 2
    if [ $# -gt 0 ] && [[ "$1" =~ ^[0-9]+$ ]]; then
        rf="$1"
        shift
    fi
    for c in "$@"; do args+=(--config "$c"); done
    tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$(bootstrap)" --create --topic "$name" \
        --partitions "$parts" --replication-factor "$rf" "${args[@]}" >&2
}

# `--listener PROFILE` before a client command's arguments: the client goes through that secured
# listener (client_profile) instead of PLAINTEXT. Sets $client_bootstrap, $client_args, $client_shift.
client_listener() {
    client_bootstrap="$(bootstrap)"
    client_args=()
    client_shift=0
    if [ "${1:-}" = --listener ]; then
        client_profile "${2:?--listener PROFILE}"
        client_args=(--command-config "$client_config")
        client_shift=2
    fi
}

cmd_consume() {
    client_listener "${1:-}" "${2:-}"
    shift "$client_shift"
    [ $# -ge 1 ] || die "consume [--listener PROFILE] TOPIC [--isolation-level L] [ConsoleConsumer args...]"
    local topic="$1"
    shift
    tool org.apache.kafka.tools.consumer.ConsoleConsumer --bootstrap-server "$client_bootstrap" "${client_args[@]}" --topic "$topic" \
        --from-beginning --group "kafka-cluster-consume-$$-$RANDOM" \
        --formatter-property print.timestamp=true --formatter-property print.partition=true \
        --formatter-property print.offset=true --formatter-property print.headers=true \
        --formatter-property print.key=true "$@"
}

cmd_consume_json() {
    client_listener "${1:-}" "${2:-}"
    shift "$client_shift"
    [ $# -ge 1 ] || die "consume-json [--listener PROFILE] TOPIC [ConsoleConsumer args...]"
    cmd_build_java
    local topic="$1" timeout=8000
    shift
    if [ "${1:-}" = --timeout-ms ]; then
        timeout="$2"
        shift 2
    fi
    tool org.apache.kafka.tools.consumer.ConsoleConsumer --bootstrap-server "$client_bootstrap" "${client_args[@]}" --topic "$topic" \
        --from-beginning --group "kafka-cluster-json-$$-$RANDOM" --formatter kafkasansio.HexJsonFormatter \
        --timeout-ms "$timeout" "$@"
}

# The finalized transaction.version as node $1 answers DescribeFeatures ("" when unreadable).
txn_version_at() {
    tool org.apache.kafka.tools.FeatureCommand --bootstrap-server "127.0.0.1:$(bport "$1")" describe 2>/dev/null |
        awk '$2 == "transaction.version" { for (i = 1; i < NF; i++) if ($i == "FinalizedVersionLevel:") print $(i + 1) }'
}

cmd_txn_version() {
    local n v first=""
    for n in $NODES; do
        v="$(txn_version_at "$n")"
        [ -n "$v" ] || die "node $n: no finalized transaction.version"
        [ -z "$first" ] && first="$v"
        [ "$v" = "$first" ] || die "nodes disagree on transaction.version: $first and $v (node $n)"
    done
    echo "$first"
}

cmd_set_txn_version() {
    local want="${1:-}" cur verb n t=0
    case "$want" in 0 | 1 | 2) ;; *) die "set-txn-version N: N is 0, 1 or 2" ;; esac
    cur="$(txn_version_at 1)"
    [ -n "$cur" ] || die "node 1: no finalized transaction.version"
    if [ "$cur" != "$want" ]; then
        verb=upgrade
        [ "$want" -lt "$cur" ] && verb=downgrade
        tool org.apache.kafka.tools.FeatureCommand --bootstrap-server "$(bootstrap)" "$verb" \
            --feature "transaction.version=$want" >&2
    fi
    # The controller finalizes it; each broker applies it when it replays the metadata record.
    for n in $NODES; do
        until [ "$(txn_version_at "$n")" = "$want" ]; do
            [ "$t" -ge 60 ] && die "node $n: transaction.version not $want after 30 s"
            sleep 0.5
            t=$((t + 1))
        done
    done
    say "transaction.version $cur -> $want on every node"
}

case "${1:-}" in
fetch) cmd_fetch ;;
features) tool org.apache.kafka.tools.FeatureCommand --bootstrap-server "$(bootstrap)" describe ;;
txn-version) cmd_txn_version ;;
describe-txn) tool org.apache.kafka.tools.TransactionsCommand --bootstrap-server "$(bootstrap)" describe --transactional-id "${2:?transactional id}" ;;
set-txn-version) cmd_set_txn_version "${2:-}" ;;
txn-perf) cmd_build_java; shift; TOOL_JVM="$PERF_JVM" tool kafkasansio.TxnPerf "$(bootstrap)" "$@" ;;
build-java) cmd_build_java ;;
consume-json) shift; cmd_consume_json "$@" ;;
partitions) cmd_build_java; tool kafkasansio.JavaPartitions "$(bootstrap)" "${2:?topic}" ;;
start) cmd_start ;;
stop) cmd_stop ;;
kill) cmd_kill "${2:-}" ;;
pause) cmd_pause "${2:-}" ;;
resume) cmd_resume "${2:-}" ;;
start-node | restart) cmd_start_node "${2:-}" ;;
status) cmd_status ;;
bootstrap) bootstrap ;;
create-topic) shift; cmd_create_topic "$@" ;;
delete-topic) tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$(bootstrap)" --delete --topic "${2:?topic}" >&2 ;;
describe-topic) tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$(bootstrap)" --describe --topic "${2:?topic}" ;;
consume) shift; cmd_consume "$@" ;;
perf)
    shift
    client_listener "${1:-}" "${2:-}"
    shift "$client_shift"
    TOOL_JVM="$PERF_JVM" tool org.apache.kafka.tools.ProducerPerformance --bootstrap-server "$client_bootstrap" "${client_args[@]}" "$@"
    ;;
produce)
    # Kafka's console producer, one record per stdin line.
    shift
    client_listener "${1:-}" "${2:-}"
    shift "$client_shift"
    tool org.apache.kafka.tools.ConsoleProducer --bootstrap-server "$client_bootstrap" "${client_args[@]}" --topic "${1:?topic}" "${@:2}"
    ;;
secure-env) cmd_secure_env ;;
client-config) client_profile "${2:?profile}"; echo "$client_config" ;;
certs) make_certs ;;
java) shift; tool "$@" ;;
classpath) echo "$libs/*" ;;
*) sed -n '2,/^set -euo pipefail/{/^set/!p}' "$0" >&2; exit 2 ;;
esac
