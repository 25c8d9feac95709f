# Shell helpers shared by the scripts that start servers on loopback ports
# (scripts/compat.sh, scripts/differential.sh). Sourced, not run; the caller
# defines `die MESSAGE`.

# running PID: true while PID exists and has not exited (an exited child stays
# a zombie until it is waited for, and kill -0 still succeeds on a zombie).
running() {
    local _pid _comm state
    read -r _pid _comm state _ 2>/dev/null <"/proc/$1/stat" || return 1
    [ "$state" != Z ]
}

# free_ports N: N distinct free loopback ports (all bound at once, then freed).
free_ports() {
    python3 -c 'import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))' "$1"
}

# wait_ready URL NAME LOG [PID]: poll URL until it answers 2xx, for at most
# 30 s, or until PID (when given) exits; then show LOG's tail and die.
wait_ready() {
    local deadline=$((SECONDS + 30))
    until curl -fsS -o /dev/null "$1" 2>/dev/null; do
        if [ "$SECONDS" -ge "$deadline" ] || { [ -n "${4:-}" ] && ! running "$4"; }; then
            tail -n 30 "$3" >&2 || true
            die "$2 did not become ready at $1"
        fi
        sleep 0.1
    done
}
