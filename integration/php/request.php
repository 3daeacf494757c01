<?php
// One web request to a PHP app keeping its sessions in Redis, run as its own
// PHP process (suite.php passes the session settings with -d, as php.ini
// would). The session id comes in as the cookie would bring it, the result
// goes out as one JSON line:
//
//   php request.php ACTION [SID [ARG]]
//
// {"id": the session id after the request, "start": session_start()'s
//  result, "session": base64 of serialize($_SESSION) after the action,
//  "close": session_write_close()'s result, "errors": every PHP warning
//  and notice}
//
// Actions: login USER, whoami, visit (views + 1), regenerate (delete the old
// id), regenerate-keep, logout (session_destroy), setbin BASE64 (store a
// binary value), big BYTES (store that many random bytes; "session" is then
// their md5), hold MS (keep the session open MS milliseconds, then visit),
// visits N (N requests to the session in this one process, as a PHP-FPM
// worker serves them: "views" lists what each saw).

$errors = [];
set_error_handler(function (int $no, string $msg) use (&$errors) {
    $errors[] = $msg;
    return true;
});
ob_start(); // nothing may be output before the session's headers

[, $action] = $argv + [1 => ''];
$sid = $argv[2] ?? '';
$arg = $argv[3] ?? '';
if ($sid !== '') {
    $_COOKIE[session_name()] = $sid;
}

if ($action === 'visits') {
    $res = ['start' => true, 'close' => true, 'views' => []];
    for ($i = 0; $i < (int) $arg; $i++) {
        session_id($sid);
        $res['start'] = session_start() && $res['start'];
        $_SESSION['views'] = ($_SESSION['views'] ?? 0) + 1;
        $res['views'][] = $_SESSION['views'];
        $res['close'] = session_write_close() && $res['close'];
    }
    $res['id'] = $sid;
    $res['session'] = base64_encode(serialize($_SESSION));
    ob_end_clean();
    $res['errors'] = $errors;
    echo json_encode($res), "\n";
    exit;
}

$res = ['start' => session_start()];
switch ($action) {
    case 'login':
        $_SESSION['user'] = $arg;
        $_SESSION['views'] = 1;
        break;
    case 'whoami':
        break;
    case 'visit':
        $_SESSION['views'] = ($_SESSION['views'] ?? 0) + 1;
        break;
    case 'hold':
        usleep((int) $arg * 1000);
        $_SESSION['views'] = ($_SESSION['views'] ?? 0) + 1;
        break;
    case 'regenerate':
        $res['regenerated'] = session_regenerate_id(true);
        break;
    case 'regenerate-keep':
        $res['regenerated'] = session_regenerate_id(false);
        break;
    case 'logout':
        $res['destroyed'] = session_destroy();
        break;
    case 'big':
        $_SESSION['big'] = random_bytes((int) $arg);
        break;
    case 'setbin':
        $_SESSION['bin'] = base64_decode($arg, true);
        if (ini_get('session.serialize_handler') === 'php_serialize') {
            $_SESSION["nul\0key"] = 'a key with a NUL byte';
        }
        break;
    default:
        $errors[] = "unknown action $action";
}
$res['id'] = session_id();
$res['session'] = base64_encode(serialize($action === 'big' || isset($_SESSION['big']) ? md5($_SESSION['big'] ?? '') : ($_SESSION ?? [])));
$res['close'] = $action === 'logout' ? null : session_write_close();
ob_end_clean();
$res['errors'] = $errors;
echo json_encode($res), "\n";
