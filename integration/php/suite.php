<?php
// The phpredis session suite: a session's life driven through PHP processes
// that each act as one web request (request.php), with the session handler
// phpredis registers, and the Redis/RedisCluster classes' basics. It checks
// the server directly over its own RESP client (resp.php).
//
//   REDIS_URL=redis://[:PASSWORD@]127.0.0.1:PORT php suite.php
//
// It uses session.save_handler=redis with save_path
// tcp://HOST:PORT?prefix=…[&auth=PASSWORD], or with REDIS_CLUSTER=1
// session.save_handler=rediscluster with save_path seed[]=HOST:PORT&prefix=….
// Prints "ok - …" or "not ok - …" per check and a last line
// "# php: N passed, N failed, N skipped"; exits 1 if any failed.

require __DIR__ . '/resp.php';

const LIFETIME = 1800; // session.gc_maxlifetime: the sessions' TTL in seconds

$url = parse_url(getenv('REDIS_URL') ?: 'redis://127.0.0.1:6379');
$host = $url['host'];
$port = (int) $url['port'];
$password = isset($url['pass']) ? urldecode($url['pass']) : null;
$handler = getenv('REDIS_CLUSTER') ? 'rediscluster' : 'redis';
$cluster = $handler === 'rediscluster';
$prefix = 'sess:php-' . $handler . ':' . bin2hex(random_bytes(4)) . ':';

$savePath = $cluster
    ? "seed[]=$host:$port&timeout=5&read_timeout=5&prefix=" . urlencode($prefix)
    : "tcp://$host:$port?timeout=5&read_timeout=5&prefix=" . urlencode($prefix);
if ($password !== null) {
    $savePath .= '&auth=' . urlencode($password);
}

$redis = new Resp($host, $port, $password);
$results = ['passed' => 0, 'failed' => 0, 'skipped' => 0];

/** check runs one named check; a thrown exception fails it. */
function check(string $name, callable $fn): void
{
    global $results;
    try {
        $fn();
        echo "ok - $name\n";
        $results['passed']++;
    } catch (Throwable $e) {
        echo "not ok - $name: {$e->getMessage()}\n";
        $results['failed']++;
    }
}

function want(bool $ok, string $what): void
{
    if (!$ok) {
        throw new RuntimeException($what);
    }
}

/**
 * request runs request.php ACTION [SID [ARG]] as one PHP process with the
 * session settings (and $ini over them) and returns its JSON result, with
 * the session decoded. A process that fails, or any PHP warning or notice
 * when $errorsOK is false, fails the check; with $errorsOK a process that
 * fails returns ['exit' => its status, 'stderr' => what it said].
 */
function request(string $action, string $sid = '', string $arg = '', array $ini = [], bool $errorsOK = false): array
{
    $cmd = requestCommand($action, $sid, $arg, $ini);
    $proc = proc_open($cmd, [1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes);
    $out = stream_get_contents($pipes[1]);
    $err = stream_get_contents($pipes[2]);
    $rc = proc_close($proc);
    $res = json_decode($out, true);
    if ($errorsOK && $rc !== 0) {
        return ['exit' => $rc, 'stderr' => $err];
    }
    want($rc === 0 && is_array($res), "request $action: exit $rc, stdout " . json_encode($out) . ", stderr " . json_encode($err));
    $res['session'] = unserialize(base64_decode($res['session']));
    if (!$errorsOK) {
        want($res['errors'] === [], "request $action: PHP said " . json_encode($res['errors']));
        want($res['start'] === true, "request $action: session_start() returned false");
        want($res['close'] !== false, "request $action: session_write_close() returned false");
    }
    return $res;
}

/** requestCommand returns the command line of request(). */
function requestCommand(string $action, string $sid, string $arg, array $ini): array
{
    global $handler, $savePath;
    $ini += [
        'session.save_handler' => $handler,
        'session.save_path' => $savePath,
        'session.gc_maxlifetime' => (string) LIFETIME,
        'session.use_strict_mode' => '1',
        'session.use_cookies' => '1',
        'session.use_only_cookies' => '1',
        'session.lazy_write' => '1',
        'session.serialize_handler' => 'php',
        'display_errors' => 'stderr',
    ];
    $cmd = [PHP_BINARY];
    foreach ($ini as $k => $v) {
        $cmd[] = '-d';
        $cmd[] = "$k=\"$v\""; // quoted: a save_path has '=' and '&' in it
    }
    array_push($cmd, __DIR__ . '/request.php', $action, $sid, $arg);
    return $cmd;
}

function skey(string $sid): string
{
    global $prefix;
    return $prefix . $sid;
}

/** pttl returns the key's PTTL, failing on an error reply. */
function pttl(string $sid): int
{
    global $redis;
    $t = $redis->call('PTTL', skey($sid));
    want(is_int($t), 'PTTL: ' . Resp::show($t));
    return $t;
}

function wantTTL(string $sid, int $seconds, string $when): void
{
    $t = pttl($sid);
    want($t > ($seconds - 10) * 1000 && $t <= $seconds * 1000, "PTTL $when: $t ms; want about {$seconds}000 ms");
}

function wantGone(string $sid, string $what): void
{
    global $redis;
    $n = $redis->call('EXISTS', skey($sid));
    want($n === 0, "$what: EXISTS says " . Resp::show($n) . '; want 0');
}

$alice = null;

check('create: a new session is stored under the prefix with gc_maxlifetime as its TTL', function () use (&$alice, $redis) {
    $r = request('login', '', 'alice');
    $alice = $r['id'];
    want(strlen($alice) >= 22, "session id " . json_encode($alice));
    $raw = $redis->call('GET', skey($alice));
    want($raw === 'user|s:5:"alice";views|i:1;', 'stored ' . Resp::show($raw));
    wantTTL($alice, LIFETIME, 'after login');
});

check('load: a later request with the id gets the session', function () use (&$alice) {
    $r = request('whoami', $alice);
    want($r['id'] === $alice && $r['session'] === ['user' => 'alice', 'views' => 1], 'got ' . json_encode($r));
});

if ($cluster) {
    // phpredis 5.3.7's rediscluster handler has no validate_sid: strict
    // mode does not apply, and an unknown id is kept (so with redis-server).
    check('no strict mode (rediscluster): an unknown id is kept, with an empty session', function () {
        $r = request('whoami', 'unknownsessionid1234567890');
        want($r['id'] === 'unknownsessionid1234567890' && $r['session'] === [], 'got ' . json_encode($r));
    });
} else {
    check('strict mode: an unknown id gets a new, empty session and nothing is stored under it', function () {
        $r = request('whoami', 'unknownsessionid1234567890');
        want($r['id'] !== 'unknownsessionid1234567890' && $r['session'] === [], 'got ' . json_encode($r));
        wantGone('unknownsessionid1234567890', 'the unknown id');
    });
}

check('lazy_write: an unchanged session has its TTL renewed, and the data kept', function () use (&$alice, $redis) {
    want($redis->call('PEXPIRE', skey($alice), '5000') === 1, 'PEXPIRE failed');
    $r = request('whoami', $alice);
    want($r['session'] === ['user' => 'alice', 'views' => 1], 'got ' . json_encode($r['session']));
    wantTTL($alice, LIFETIME, 'after an unchanged request');
    want($redis->call('GET', skey($alice)) === 'user|s:5:"alice";views|i:1;', 'the data changed');
});

check('gc_maxlifetime sets the TTL an unchanged request renews to', function () use (&$alice) {
    request('whoami', $alice, '', ['session.gc_maxlifetime' => '600']);
    wantTTL($alice, 600, 'after a request with gc_maxlifetime=600');
});

check('lazy_write=0: an unchanged session is written again with its TTL', function () use (&$alice, $redis) {
    want($redis->call('PEXPIRE', skey($alice), '5000') === 1, 'PEXPIRE failed');
    request('whoami', $alice, '', ['session.lazy_write' => '0']);
    wantTTL($alice, LIFETIME, 'after an unchanged request with lazy_write=0');
    want($redis->call('GET', skey($alice)) === 'user|s:5:"alice";views|i:1;', 'the data changed');
});

check('save: a changed session is written back', function () use (&$alice) {
    $r = request('visit', $alice);
    want($r['session']['views'] === 2, 'visit: ' . json_encode($r['session']));
    $r = request('whoami', $alice);
    want($r['session'] === ['user' => 'alice', 'views' => 2], 'whoami: ' . json_encode($r['session']));
});

check('session_regenerate_id(true): the new id has the data, the old id is gone', function () use (&$alice) {
    $old = $alice;
    $r = request('regenerate', $old);
    $alice = $r['id'];
    want($r['regenerated'] === true && $alice !== $old, 'regenerate: ' . json_encode($r));
    wantGone($old, 'the old id');
    wantTTL($alice, LIFETIME, 'of the new id');
    want(request('whoami', $alice)['session'] === ['user' => 'alice', 'views' => 2], 'the new id lost the data');
    $r = request('whoami', $old);
    want($r['session'] === [], 'the old id still loads: ' . json_encode($r));
});

check('session_regenerate_id(false): both ids have the data', function () use (&$alice) {
    $old = $alice;
    $r = request('regenerate-keep', $old);
    $alice = $r['id'];
    want($r['regenerated'] === true && $alice !== $old, 'regenerate: ' . json_encode($r));
    foreach ([$old, $alice] as $sid) {
        want(request('whoami', $sid)['session'] === ['user' => 'alice', 'views' => 2], "$sid lost the data");
    }
});

check('session_destroy: the session is gone and a later request with its id is empty', function () use (&$alice) {
    $r = request('logout', $alice);
    want($r['destroyed'] === true, 'session_destroy: ' . json_encode($r));
    wantGone($alice, 'the destroyed session');
    foreach (['1', '0'] as $strict) {
        $r = request('whoami', $alice, '', ['session.use_strict_mode' => $strict]);
        want($r['session'] === [], "strict mode $strict: the destroyed session loads " . json_encode($r['session']));
    }
});

$binary = "\0NUL\0" . implode('', array_map('chr', range(0, 255))) . "\r\n\$5\r\n*1\r\n|;:\"}\0";
foreach (['php' => fn ($v) => 'bin|' . serialize($v), 'php_serialize' => fn ($v) => serialize(['bin' => $v, "nul\0key" => 'a key with a NUL byte'])] as $ser => $encode) {
    check("binary-safe: serialize_handler=$ser, a value of every byte and NULs", function () use ($ser, $encode, $binary, $redis) {
        $ini = ['session.serialize_handler' => $ser];
        $r = request('setbin', '', base64_encode($binary), $ini);
        $sid = $r['id'];
        $raw = $redis->call('GET', skey($sid));
        want($raw === $encode($binary), 'stored ' . bin2hex((string) $raw) . '; want ' . bin2hex($encode($binary)));
        $back = request('whoami', $sid, '', $ini)['session'];
        want(($back['bin'] ?? null) === $binary, 'loaded ' . bin2hex((string) ($back['bin'] ?? '')));
        request('logout', $sid, '', $ini);
    });
}

check('a session of 300 KB (commands over 64 KiB) is stored and loaded whole', function () {
    $r = request('big', '', (string) (300 << 10));
    $back = request('whoami', $r['id']);
    want($back['session'] === $r['session'], 'loaded md5 ' . $back['session'] . '; stored ' . $r['session']);
    request('logout', $r['id']);
});

// redis-server takes values up to 512 MB; cloakroomd refuses one over
// --max-value-size (1 MiB by default) and closes the connection (a protocol
// error), and phpredis then warns that it failed to write the session (the
// session keeps its previous data).
check('a session over the server\'s value limit', function () use ($host, $port, $password, $redis, $prefix) {
    $probe = (new Resp($host, $port, $password))->call('SET', $prefix . 'probe', str_repeat('x', 2 << 20));
    $redis->call('DEL', $prefix . 'probe');
    $sid = request('login', '', 'large')['id'];
    $r = request('big', $sid, (string) (2 << 20), [], true);
    if (!$probe instanceof RespError) {
        want($r['errors'] === [] && $r['close'] === true, 'a 2 MiB session: ' . json_encode($r['errors']));
        want(request('whoami', $sid)['session'] === $r['session'], 'the 2 MiB session did not load whole');
    } else {
        want(count($r['errors']) === 1 && str_starts_with($r['errors'][0], 'session_write_close(): Failed to write session data'), 'a 2 MiB session: ' . json_encode($r['errors']));
        echo '# the server refuses 2 MiB (', Resp::show($probe), '); PHP says: ', json_encode($r['errors']), "\n";
        $back = request('whoami', $sid)['session'];
        want($back === ['user' => 'large', 'views' => 1], 'the refused write changed the session: ' . json_encode($back));
    }
    request('logout', $sid);
});

check('persistent=1: a worker\'s later requests reuse its connection', function () {
    global $savePath;
    $sid = request('login', '', 'worker')['id'];
    $r = request('visits', $sid, '3', ['session.save_path' => $savePath . '&persistent=1']);
    want($r['views'] === [2, 3, 4], 'views seen ' . json_encode($r['views']));
    request('logout', $sid);
});

check('database=0 in save_path (SELECT 0)', function () {
    global $savePath;
    $ini = ['session.save_path' => $savePath . '&database=0'];
    $sid = request('login', '', 'db0', $ini)['id'];
    want(request('whoami', $sid)['session'] === ['user' => 'db0', 'views' => 1], 'the session is not in database 0');
    request('logout', $sid, '', $ini);
});

// cloakroomd has database 0 only: SELECT 1 answers "ERR DB index is out of
// range", which phpredis ignores, and the sessions land in database 0.
if (!$cluster) {
    check('database=1 in save_path', function () use ($redis) {
        global $savePath;
        $select = $redis->call('SELECT', '1');
        $redis->call('SELECT', '0');
        $ini = ['session.save_path' => $savePath . '&database=1'];
        $r = request('login', '', 'db1', $ini);
        $inZero = $redis->call('EXISTS', skey($r['id']));
        if ($select === 'OK') {
            want($inZero === 0, 'the session went to database 0');
        } else {
            want($select instanceof RespError && $select->message === 'ERR DB index is out of range', 'SELECT 1: ' . Resp::show($select));
            want($inZero === 1, 'the session is not in database 0');
        }
        want(request('whoami', $r['id'], '', $ini)['session'] === ['user' => 'db1', 'views' => 1], 'the session does not load');
        request('logout', $r['id'], '', $ini);
    });
}

check('sessions of several users are kept apart', function () {
    $ids = [];
    foreach (['bob', 'carol', 'dave', 'erin', 'frank', 'grace'] as $u) {
        $ids[$u] = request('login', '', $u)['id'];
    }
    foreach ($ids as $u => $sid) {
        $r = request('visit', $sid);
        want($r['session'] === ['user' => $u, 'views' => 2], "$u: " . json_encode($r['session']));
    }
    foreach ($ids as $sid) {
        request('logout', $sid);
        wantGone($sid, 'a logged-out session');
    }
});

if ($password !== null) {
    // The redis handler warns and session_start() returns false; the
    // rediscluster handler throws (a fatal error unless caught).
    check('a wrong password is refused', function () use ($cluster) {
        global $savePath;
        $bad = str_replace('auth=', 'auth=wrong', $savePath);
        $r = request('login', '', 'mallory', ['session.save_path' => $bad], true);
        if (isset($r['exit'])) {
            want($cluster && str_contains($r['stderr'], "Uncaught RedisClusterException: Couldn't map cluster keyspace"), 'the request failed: ' . json_encode($r));
            echo '# with a wrong password PHP says: ', json_encode(strtok($r['stderr'], "\n")), "\n";
            return;
        }
        want(!$cluster && $r['start'] === false, 'the session was started: ' . json_encode($r));
        want($r['errors'] !== [], 'PHP said nothing');
        echo '# with a wrong password PHP says: ', json_encode($r['errors']), "\n";
    });
}

// The Redis (or RedisCluster) class, as an app would use it for sessions
// of its own.
check(($cluster ? 'RedisCluster' : 'Redis') . ' class: get, set, setex, expire, ttl, persist, exists, del, unlink, multi' . ($cluster ? '' : ', pipeline, ping, select, mset, mget'), function () use ($host, $port, $password, $cluster, $prefix, $binary) {
    if ($cluster) {
        $r = new RedisCluster(null, ["$host:$port"], 5, 5, false, $password);
    } else {
        $r = new Redis();
        want($r->connect($host, $port, 5), 'connect failed');
        if ($password !== null) {
            want($r->auth($password) === true, 'auth failed');
        }
    }
    $k = $prefix . 'class:' . bin2hex(random_bytes(4));
    want($r->get($k) === false, 'get of a missing key');
    want($r->set($k, $binary) === true, 'set');
    want($r->get($k) === $binary, 'get returned other bytes');
    want($r->exists($k) === 1, 'exists');
    want($r->ttl($k) === -1, 'ttl of a key without one: ' . json_encode($r->ttl($k)));
    want($r->expire($k, 300) === true, 'expire');
    $t = $r->ttl($k);
    want($t > 290 && $t <= 300, "ttl after expire: $t");
    want($r->setex($k, 60, 'v2') === true, 'setex');
    $t = $r->ttl($k);
    want($t > 50 && $t <= 60 && $r->get($k) === 'v2', "after setex: ttl $t");
    want($r->set($k, 'v3', ['nx', 'ex' => 60]) === false, 'set nx of an existing key');
    want($r->set($k, 'v3', ['xx', 'ex' => 60]) === true, 'set xx of an existing key');
    want($r->persist($k) === true && $r->ttl($k) === -1, 'persist');
    want($r->unlink($k) === 1, 'unlink');
    want($r->exists($k) === 0 && $r->get($k) === false, 'after unlink');
    want($r->del($k) === 0, 'del of a missing key');
    // MULTI/EXEC, and a pipeline (one key: a cluster client needs no more)
    $res = $r->multi()->setex($k, 60, 'tx')->get($k)->ttl($k)->exec();
    want($res === [true, 'tx', 60], 'multi/exec: ' . json_encode($res));
    if (!$cluster) {
        $res = $r->pipeline()->set($k, 'p')->get($k)->del($k)->exec();
        want($res === [true, 'p', 1], 'pipeline: ' . json_encode($res));
        want($r->ping() === true, 'ping');
        want($r->select(0) === true, 'select 0');
        $k2 = $k . ':2';
        want($r->mset([$k => 'a', $k2 => 'b']) === true && $r->mget([$k, $k2, $k . ':none']) === ['a', 'b', false], 'mset/mget');
        want($r->del($k, $k2) === 2, 'del of two keys');
    } else {
        want($r->del($k) === 1, 'del');
    }
    $r->close();
});

// A cluster client should send each key to its slot's primary: none of
// the session commands may be redirected (MOVED, which phpredis follows
// silently) or forwarded by a cloakroomd node.
if ($cluster) {
    check('routes in one hop: per request CLUSTER SLOTS, then GET and SETEX at the key\'s primary', function () use ($redis, $password) {
        $nodes = [];
        foreach ($redis->call('CLUSTER', 'SLOTS') as $range) {
            foreach (array_slice($range, 2) as $node) {
                $nodes["$node[0]:$node[1]"] ??= new Resp($node[0], (int) $node[1], $password);
            }
        }
        $commands = function () use ($nodes): int {
            $sum = 0;
            foreach ($nodes as $addr => $node) {
                $info = $node->call('INFO', 'stats');
                want(is_string($info) && preg_match('/^total_commands_processed:(\d+)/m', $info, $m) === 1, "INFO stats of $addr: " . Resp::show($info));
                $sum += (int) $m[1];
            }
            return $sum;
        };
        $forwarded = fn (): float => array_sum(array_map(fn ($addr) => metric($addr, 'cloakroom_forwarded_requests_total'), metricsAddrs()));
        // 10 sessions, so 10 slots (a slot the client maps wrongly is
        // redirected once per request); each logs in and visits once. A
        // request connects to a seed and to the key's node, and with a
        // password sends AUTH on each.
        $users = 10;
        $each = $password === null ? 3 : 5;
        $fwd = $forwarded();
        $before = $commands();
        $sids = [];
        for ($i = 0; $i < $users; $i++) {
            $sids[$i] = request('login', '', "hopper$i")['id'];
            request('visit', $sids[$i]);
        }
        // Each node's first INFO counts in the second (redis-server counts a
        // command once it ran, cloakroomd as it starts: the second's own).
        $extra = $commands() - $before - count($nodes) - $each * 2 * $users;
        want($extra === 0, 2 * $users . " requests sent $extra commands more than $each each over " . count($nodes) . ' nodes: redirected');
        want($forwarded() === $fwd, 'cloakroom_forwarded_requests_total went from ' . $fwd . ' to ' . $forwarded());
        foreach ($sids as $i => $sid) {
            want(request('whoami', $sid)['session'] === ['user' => "hopper$i", 'views' => 2], "hopper$i's session lost its visit");
        }
    });
}

// failover= makes phpredis send reads to replicas too (READONLY on those
// connections); the session must read the same.
if ($cluster) {
    foreach (['error', 'distribute', 'distribute_slaves'] as $failover) {
        check("failover=$failover: reads that may go to replicas see every write", function () use ($failover) {
            global $savePath;
            $ini = ['session.save_path' => "$savePath&failover=$failover"];
            $sid = request('login', '', 'replica', $ini)['id'];
            for ($i = 2; $i <= 4; $i++) {
                $r = request('visit', $sid, '', $ini);
                want($r['session'] === ['user' => 'replica', 'views' => $i], "visit $i: " . json_encode($r['session']));
            }
            request('logout', $sid, '', $ini);
            wantGone($sid, 'the logged-out session');
        });
    }
}

/** metricsAddrs lists the HTTP addresses in CLOAKROOM_METRICS (cloakroomd targets with /metrics). */
function metricsAddrs(): array
{
    $v = getenv('CLOAKROOM_METRICS');
    return $v ? explode(',', $v) : [];
}

/** metric reads the unlabelled metric $name from http://$addr/metrics. */
function metric(string $addr, string $name): float
{
    $text = file_get_contents("http://$addr/metrics");
    want($text !== false, "GET http://$addr/metrics failed");
    want(preg_match('/^' . preg_quote($name, '/') . ' (\S+)$/m', $text, $m) === 1, "http://$addr/metrics has no $name");
    return (float) $m[1];
}

// Session locking: phpredis takes the lock with SET NX and releases it with
// a Lua script (EVALSHA, then EVAL). Against a server that runs scripts
// locking must work; against one that does not (cloakroomd), the failure a
// user sees is checked here so that docs/redis-compat.md stays true.
if (!$cluster) {
    $scripting = $redis->call('EVAL', 'return 1', '0') === 1;
    $lockIni = ['redis.session.locking_enabled' => '1', 'redis.session.lock_expire' => '30'];
    check('locking (' . ($scripting ? 'the server runs scripts' : 'the server runs no scripts') . ')', function () use ($scripting, $lockIni, $redis) {
        if ($scripting) {
            $sid = request('login', '', 'locker', $lockIni)['id'];
            $lock = skey($sid) . '_LOCK';
            want($redis->call('EXISTS', $lock) === 0, 'the lock is still held after the request');
            // A request holding the lock for 300 ms; another waiting for it
            // (with no retry limit) then sees its write.
            $slow = proc_open(requestCommand('hold', $sid, '300', $lockIni), [1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes);
            for ($i = 0; $i < 200 && $redis->call('EXISTS', $lock) !== 1; $i++) {
                usleep(5000);
            }
            want($redis->call('EXISTS', $lock) === 1, 'the slow request never took the lock');
            $r = request('visit', $sid, '', $lockIni + ['redis.session.lock_retries' => '-1']);
            stream_get_contents($pipes[1]);
            proc_close($slow);
            want($r['session']['views'] === 3, 'the waiting request did not see the first one\'s write: ' . json_encode($r['session']));
            return;
        }
        // Without scripts: the first request cannot release its lock ...
        $r = request('login', '', 'locker', $lockIni, true);
        $sid = $r['id'];
        $lock = skey($sid) . '_LOCK';
        want($r['errors'] === ['session_write_close(): Failed to release session lock'], 'first request: ' . json_encode($r['errors']));
        $t = $redis->call('PTTL', $lock);
        want(is_int($t) && $t > 0 && $t <= 30000, 'the lock left behind has PTTL ' . Resp::show($t) . '; want lock_expire (30 s)');
        // ... so the next request on the session cannot take it, reads the
        // session, and cannot write it.
        $r = request('visit', $sid, '', $lockIni, true);
        want($r['session']['views'] === 2, 'second request read ' . json_encode($r['session']));
        want(count($r['errors']) === 2 && str_contains($r['errors'][0], 'Acquire of session lock was not successful')
            && str_contains($r['errors'][1], 'Failed to write session data'), 'second request: ' . json_encode($r['errors']));
        want($redis->call('GET', skey($sid)) === 'user|s:6:"locker";views|i:1;', 'the second request\'s write was stored');
        $redis->call('DEL', $lock, skey($sid));
    });
}

printf("# php: %d passed, %d failed, %d skipped\n", $results['passed'], $results['failed'], $results['skipped']);
exit($results['failed'] > 0 ? 1 : 0);
