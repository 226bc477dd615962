"""Where a Sigil process spends its CPU, by component, from a `perf record`.

Usage: perf_categories.py PERF_DATA [TOP]

Reads `perf report --no-children --sort dso,symbol` (flat, no call graphs:
release builds have no frame pointers) and adds each symbol's share to a
component named by a pattern of its symbol (kernel networking, futex and
scheduling, crypto, SQLite, logging, metrics, malloc, HTTP, JSON, tokio).
Prints the components, largest first, with their top symbols.
"""
import re, subprocess, sys, collections
data = sys.argv[1]
shown = int(sys.argv[2]) if len(sys.argv) > 2 else 3
out = subprocess.run(["perf", "report", "-i", data, "--no-children", "--sort", "dso,symbol", "--stdio", "-g", "none"],
                     capture_output=True, text=True).stdout
rules = [
 ("kernel: futex/scheduling/wake-ups", r"futex|schedule|switch|wake|raw_spin|try_to_wake|ttwu|enqueue|dequeue|update_|pick_|select_task|idle|irqentry|sysvec|reschedule"),
 ("kernel: network/TCP", r"tcp|inet|sock|skb|ip_|__dev|net_|loopback|napi|__netif|nf_|sk_|__sys_sendto|__sys_recv|sendmsg|recvmsg|epoll|ep_"),
 ("kernel: other (syscalls, files, memory)", r".*"),
]
user_rules = [
 ("crypto (ring, aws-lc, argon2)", r"argon2|blake2|edwards|bignum_|s2n|fe4_|ring_core|aws_lc|fiat|x25519|ed25519|sha256|sha512|sha2|bn_|rsaz|mont|ecp_|fe_|ge_|GFp|curve25519|x86_64_mont|ChaCha|aes|rsa|digest|hmac"),
 ("SQLite + sqlx", r"sqlite|sqlx|flume|pcache|btree|pager|vdbe|__rust_begin_short_backtrace"),
 ("logging (tracing, fmt)", r"tracing|fmt::|core::fmt|Formatter|write_str|nu_ansi|format_event|Writer|chrono|time::format"),
 ("metrics", r"metrics|prometheus|quanta|Histogram|sketches"),
 ("malloc/free, memcpy", r"malloc|free|memmove|memcpy|memset|memcmp|_int_|realloc|calloc|unlink_chunk|consolidate|tcache"),
 ("HTTP (hyper, axum, tower)", r"hyper|axum|tower|http::|httparse|h1::|matchit|bytes::"),
 ("JSON / base64 / serde", r"serde|json|base64|ryu|itoa"),
 ("tokio runtime", r"tokio|mio|parking|park|Waker|wake|std::thread|condvar|futex|syscall|pthread"),
 ("moka / uuid / getrandom", r"moka|uuid|getrandom|crossbeam|rand"),
]
buckets = collections.Counter(); total = 0.0; top = collections.defaultdict(list)
for line in out.splitlines():
    m = re.match(r"\s+([\d.]+)%\s+(\S+)\s+\[(.)\]\s+(.*)$", line)
    if not m: continue
    pct, dso, kind, sym = float(m.group(1)), m.group(2), m.group(3), m.group(4).strip()
    total += pct
    if kind == "k":
        for name, rx in rules:
            if re.search(rx, sym, re.I): break
    else:
        name = "other user space (" + dso + ")"
        for n, rx in user_rules:
            if re.search(rx, sym, re.I): name = n; break
    buckets[name] += pct; top[name].append((pct, sym[:90]))
for name, pct in buckets.most_common():
    examples = "; ".join(s.strip() for _, s in sorted(top[name], reverse=True)[:shown])
    print(f"{pct:6.1f}%  {name:<42} e.g. {examples}")
