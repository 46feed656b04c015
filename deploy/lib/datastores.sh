# Shared by deploy/local-cluster and tests/run: private PostgreSQL and Redis on loopback.
# Source it, then call the functions. Everything lives under the directory you pass.

# Packages the cluster needs to build and run on Debian 12 (clang-15, libfuzzer-15-dev and llvm-15, for
# its symbolizer: the fuzz and sanitizer builds of tests/run).
CHAT_APT_PACKAGES="cmake g++ ninja-build ccache pkg-config \
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev libboost-program-options1.81-dev \
  libgrpc++-dev libgrpc-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler grpc-proto \
  libpqxx-dev libhiredis-dev libspdlog-dev libfmt-dev libgtest-dev libgmock-dev libssl-dev libutf8proc-dev \
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
# postgres user when started as root (initdb refuses root). Trust auth on loopback only. durable
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
  local sync="-c fsync=on -c synchronous_commit=on"
  # The unsafe fast mode (local-cluster --unsafe-no-fsync): a crash loses recent commits.
  [ "$durable" = 0 ] && sync="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"  # unsafe fast mode
  "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
    -o "-h 127.0.0.1 -p $port -k $dir/data -c max_connections=400 -c shared_buffers=128MB $sync" start >/dev/null \
    || { tail -20 "$dir/postgres.log" >&2; return 1; }
}

chat_stop_postgres() {
  local dir=$1 bin; bin=$(chat_pg_bindir)
  local as=(); [ "$(id -u)" = 0 ] && as=(runuser -u postgres --)
  [ -f "$dir/data/postmaster.pid" ] && "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1
  return 0
}

# chat_start_redis DIR PORT: no persistence (Redis holds only what may be lost).
chat_start_redis() {
  local dir=$1 port=$2
  mkdir -p "$dir"
  redis-server --bind 127.0.0.1 --port "$port" --save "" --appendonly no --daemonize yes \
    --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --dir "$dir" --maxclients 10000 >/dev/null
  local i; for i in $(seq 1 100); do
    redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && return 0
    sleep 0.05
  done
  echo "redis did not start, see $dir/redis.log" >&2; return 1
}

chat_stop_redis() {
  local dir=$1
  [ -f "$dir/redis.pid" ] && kill "$(cat "$dir/redis.pid")" 2>/dev/null
  rm -f "$dir/redis.pid"; return 0
}
