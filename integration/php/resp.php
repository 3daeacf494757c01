<?php
// A small RESP2 client for the suite's own checks, so that what the suite
// reads back does not go through phpredis, the library under test. It
// follows MOVED once, for the cluster targets.

final class RespError
{
    public function __construct(public string $message)
    {
    }
}

final class Resp
{
    /** @var resource */
    private $sock;

    public function __construct(private string $host, private int $port, private ?string $password = null)
    {
        $this->connect($host, $port);
    }

    private function connect(string $host, int $port): void
    {
        $sock = @stream_socket_client("tcp://$host:$port", $errno, $errstr, 5);
        if ($sock === false) {
            throw new RuntimeException("connect $host:$port: $errstr");
        }
        stream_set_timeout($sock, 15);
        $this->sock = $sock;
        if ($this->password !== null && $this->password !== '') {
            $r = $this->send(['AUTH', $this->password]);
            if ($r !== 'OK') {
                throw new RuntimeException("AUTH on $host:$port: " . self::show($r));
            }
        }
    }

    /** call sends one command and returns its reply (a RespError for an error reply). */
    public function call(string ...$args): mixed
    {
        $r = $this->send($args);
        if ($r instanceof RespError && str_starts_with($r->message, 'MOVED ')) {
            [, , $addr] = explode(' ', $r->message);
            $i = strrpos($addr, ':');
            $other = new Resp(substr($addr, 0, $i), (int) substr($addr, $i + 1), $this->password);
            return $other->send($args);
        }
        return $r;
    }

    private function send(array $args): mixed
    {
        $out = '*' . count($args) . "\r\n";
        foreach ($args as $a) {
            $out .= '$' . strlen($a) . "\r\n" . $a . "\r\n";
        }
        for ($off = 0; $off < strlen($out);) {
            $n = fwrite($this->sock, substr($out, $off));
            if ($n === false || $n === 0) {
                throw new RuntimeException('write failed');
            }
            $off += $n;
        }
        return $this->read();
    }

    private function read(): mixed
    {
        $line = fgets($this->sock);
        if ($line === false) {
            throw new RuntimeException('connection closed or timed out');
        }
        $line = substr($line, 0, -2);
        $rest = substr($line, 1);
        switch ($line[0]) {
            case '+':
                return $rest;
            case '-':
                return new RespError($rest);
            case ':':
                return (int) $rest;
            case '$':
                if ((int) $rest < 0) {
                    return null;
                }
                $data = '';
                $want = (int) $rest + 2;
                while (strlen($data) < $want) {
                    $chunk = fread($this->sock, $want - strlen($data));
                    if ($chunk === false || $chunk === '') {
                        throw new RuntimeException('short bulk string');
                    }
                    $data .= $chunk;
                }
                return substr($data, 0, -2);
            case '*':
                if ((int) $rest < 0) {
                    return null;
                }
                $a = [];
                for ($i = 0; $i < (int) $rest; $i++) {
                    $a[] = $this->read();
                }
                return $a;
        }
        throw new RuntimeException('unexpected reply ' . json_encode($line));
    }

    /** show renders a reply for a failure message. */
    public static function show(mixed $r): string
    {
        return $r instanceof RespError ? "-{$r->message}" : json_encode($r, JSON_INVALID_UTF8_SUBSTITUTE);
    }
}
