# Shared by deploy/local-cluster and tests/run: private PostgreSQL and Redis on loopback.
# Source it, then call the functions. Everything lives under the directory you pass.

# Packages the cluster needs to build and run on Debian 12 (clang-15, libfuzzer-15-dev and llvm-15, for
# its symbolizer: the fuzz and sanitizer builds of tests/run).
CHAT_APT_PACKAGES="cmake g++ ninja-build ccache pkg-config \
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev libboost-program-options1.81-dev \
  libgrpc++-dev libgrpc-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler grpc-proto \
  libpqxx-dev libhiredis-dev libspdlog-dev libfmt-dev libgtest-dev libgmock-dev libssl-dev libutf8proc-dev libqrencode-dev \
  postgresql redis-server redis-tools procps iproute2 ca-certificates clang-format haproxy \
  clang-15 libfuzzer-15-dev llvm-15"

# Installs whatever of CHAT_APT_PACKAGES is missing (root needed only when something is missing).
chat_install_packages() {
  local missing=()
  for p in $CHAT_APT_PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing: ${missing[*]}" >&2
  local sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -q >/dev/null
  $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}

# Prints a free TCP port on 127.0.0.1.
chat_free_port() {
  # Below the kernel's ephemeral range (32768-60999 by default), so an outgoing connection (a load
  # generator holds tens of thousands) can never have taken the port between this check and bind().
  local port
  while :; do
    port=$(( 10000 + RANDOM % 22000 ))
    (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && continue
    ss -Htan "sport = :$port" 2>/dev/null | grep -q . && continue
    echo "$port"; return 0
  done
}

chat_pg_bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }

# chat_start_postgres DIR PORT [durable]: initdb once, then start on 127.0.0.1:PORT. Runs as the
# postgres user when started as root (initdb refuses root). Authentication (pg_hba.conf, rewritten
# at every start): every TCP connection needs a scram-sha-256 password, the superuser's included;
# the superuser without one only over the Unix socket in DIR/data (mode 0700: root and postgres
# only), which chat_pg_psql uses. Services log in as their own roles (chat_pg_roles). durable
# (the default, 1): fsync and synchronous commit on, so a commit that returned survives a crash of
# PostgreSQL or of the machine; 0: both off (fast, and a crash loses recent commits).
chat_start_postgres() {
  local dir=$1 port=$2 durable=${3:-1} bin; bin=$(chat_pg_bindir)
  local as=(); [ "$(id -u)" = 0 ] && as=(runuser -u postgres --)
  mkdir -p "$dir"; [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir"
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    "${as[@]}" "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; return 1; }
  fi
  printf '%s\n' "# Written by deploy/lib/datastores.sh (chat_start_postgres) at every start." \
    "local all postgres               trust" \
    "host  all all      127.0.0.1/32  scram-sha-256" \
    "host  all all      ::1/128       scram-sha-256" | "${as[@]}" tee "$dir/data/pg_hba.conf" >/dev/null
  local sync="-c fsync=on -c synchronous_commit=on"
  # The unsafe fast mode (local-cluster --unsafe-no-fsync): a crash loses recent commits.
  [ "$durable" = 0 ] && sync="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"  # unsafe fast mode
  "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
    -o "-h 127.0.0.1 -p $port -k $dir/data -c max_connections=400 -c shared_buffers=128MB $sync" start >/dev/null \
    || { tail -20 "$dir/postgres.log" >&2; return 1; }
}

# chat_pg_psql DIR PORT [PSQL ARGS...]: psql as the superuser over the socket in DIR/data, on
# database postgres; SQL on stdin (so no password ever appears in a command line).
chat_pg_psql() {
  local dir=$1 port=$2 bin; shift 2; bin=$(chat_pg_bindir)
  local as=(); [ "$(id -u)" = 0 ] && as=(runuser -u postgres --)
  "${as[@]}" "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir/data" -p "$port" -U postgres -d postgres "$@"
}

# The process kinds that own databases; each logs in as its own role.
CHAT_PG_KINDS="account-service chat-service group-service"

# chat_pg_password DIR NAME: the password in DIR/auth/NAME.pass, made (random, 256 bits) if missing.
chat_pg_password() {
  local dir=$1 name=$2
  mkdir -p "$dir/auth"; chmod 700 "$dir/auth"
  [ -s "$dir/auth/$name.pass" ] || (umask 077; od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$dir/auth/$name.pass")
  cat "$dir/auth/$name.pass"
}

# chat_pg_roles DIR PORT [superuser]: one login role per kind of CHAT_PG_KINDS (no superuser, no
# CREATEDB, no CREATEROLE) with its password from chat_pg_password; with `superuser`, the postgres
# role gets a password too (DIR/auth/postgres.pass: the test harness connects over TCP).
chat_pg_roles() {
  local dir=$1 port=$2 with_superuser=${3:-} kind
  {
    for kind in $CHAT_PG_KINDS; do
      printf 'SELECT format($$CREATE ROLE %%I$$, %s) WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = %s)\\gexec\n' \
        "'$kind'" "'$kind'"
      printf 'ALTER ROLE "%s" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD %s;\n' "$kind" "'$(chat_pg_password "$dir" "$kind")'"
    done
    if [ "$with_superuser" = superuser ]; then
      printf 'ALTER ROLE postgres PASSWORD %s;\n' "'$(chat_pg_password "$dir" postgres)'"
    fi
  } | chat_pg_psql "$dir" "$port"
}

# chat_pg_database DIR PORT DATABASE OWNER: creates DATABASE owned by role OWNER if missing, and lets
# only its owner (and superusers) connect to it.
chat_pg_database() {
  local dir=$1 port=$2 db=$3 owner=$4
  {
    printf 'SELECT format($$CREATE DATABASE %%I OWNER %%I$$, %s, %s) WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = %s)\\gexec\n' \
      "'$db'" "'$owner'" "'$db'"
    printf 'REVOKE CONNECT, TEMPORARY ON DATABASE "%s" FROM PUBLIC;\n' "$db"
  } | chat_pg_psql "$dir" "$port"
}

chat_stop_postgres() {
  local dir=$1 bin; bin=$(chat_pg_bindir)
  local as=(); [ "$(id -u)" = 0 ] && as=(runuser -u postgres --)
  [ -f "$dir/data/postmaster.pid" ] && "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1
  return 0
}

# The process kinds of the cluster; each has its own Redis user (chat_redis_acl).
CHAT_REDIS_KINDS="gateway account-service chat-service group-service presence-service"

# chat_redis_rules KIND: what KIND may do in Redis, as ACL rules: exactly the commands, keys and
# channels its code uses (a new command, key prefix or channel needs its rule here, or the process
# gets NOPERM). Publishers and the gateway touch no key; only presence-service owns keys.
chat_redis_rules() {
  case $1 in
    gateway) echo "resetkeys resetchannels &gw.* -@all +ping +subscribe +unsubscribe" ;;
    # Publishers of events; per-user quotas (common/src/user_quota.cc: one script, GET and SET on rl:* keys).
    account-service|chat-service|group-service)
      echo "resetkeys resetchannels ~rl:* &gw.* -@all +ping +publish +evalsha +eval +time +get +set" ;;
    # Sessions (pres:*, presz:*), leases (gwlease:*), its register script, kicks to gateways (gw.*).
    presence-service)
      echo "resetkeys resetchannels ~pres:* ~presz:* ~gwlease:* &gw.* -@all +ping +hset +hdel +hgetall +expire +set" \
        "+mget +eval +evalsha +zadd +zcard +zrange +zrem +publish" ;;
    *) echo "chat_redis_rules: unknown kind $1" >&2; return 1 ;;
  esac
}

# chat_redis_acl DIR [EXTRA_USER...]: writes DIR/users.acl: the default user off, and one user per
# kind (and per EXTRA_USER, allowed everything: the test harness) with a random 256-bit password kept
# in DIR/auth/<user>.pass (0600; made once, reused by later starts so running processes keep working).
chat_redis_acl() {
  local dir=$1; shift
  local user rules
  mkdir -p "$dir/auth"; chmod 700 "$dir/auth"
  (
    umask 077
    echo "user default off resetpass resetkeys resetchannels -@all"
    for user in $CHAT_REDIS_KINDS "$@"; do
      [ -s "$dir/auth/$user.pass" ] || od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$dir/auth/$user.pass"
      rules="~* &* +@all"
      case " $CHAT_REDIS_KINDS " in *" $user "*) rules=$(chat_redis_rules "$user") || return 1 ;; esac
      # A password given as its SHA-256 (#...), so the ACL file holds no password.
      echo "user $user on #$(tr -d '\n' <"$dir/auth/$user.pass" | sha256sum | cut -d' ' -f1) $rules"
    done
  ) >"$dir/users.acl.tmp" && mv "$dir/users.acl.tmp" "$dir/users.acl"
}

# chat_start_redis DIR PORT [open|acl [EXTRA_USER...]]: no persistence (Redis holds only what may be
# lost). acl (the default): users as chat_redis_acl writes them, the default user off; open: no
# authentication at all (the benchmark's socket.io peer only).
chat_start_redis() {
  local dir=$1 port=$2 mode=${3:-acl}; shift 2; [ $# -gt 0 ] && shift
  mkdir -p "$dir"
  local acl=() ping=(redis-cli -p "$port")
  if [ "$mode" = acl ]; then
    chat_redis_acl "$dir" "$@" || return 1
    acl=(--aclfile "$dir/users.acl")
    ping=(env REDISCLI_AUTH="$(cat "$dir/auth/presence-service.pass")" redis-cli --no-auth-warning
          --user presence-service -p "$port")
  fi
  redis-server --bind 127.0.0.1 --port "$port" --save "" --appendonly no --daemonize yes \
    --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --dir "$dir" --maxclients 10000 "${acl[@]}" >/dev/null
  local i; for i in $(seq 1 100); do
    "${ping[@]}" ping 2>/dev/null | grep -q PONG && return 0
    sleep 0.05
  done
  echo "redis did not start, see $dir/redis.log" >&2; return 1
}

chat_stop_redis() {
  local dir=$1
  [ -f "$dir/redis.pid" ] && kill "$(cat "$dir/redis.pid")" 2>/dev/null
  rm -f "$dir/redis.pid"; return 0
}
