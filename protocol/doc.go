// Package protocol defines Cloakroom's native wire protocol: the operations,
// the request and response messages, their msgpack encoding, the framing and
// the table of error codes. It does no I/O of its own beyond reading and
// writing frames on an io.Reader or io.Writer it is given.
//
// A connection is a stream of frames. Each frame is a 4-byte big-endian
// length followed by that many bytes of msgpack: one Request (client to
// node) or one Response (node to client). Requests carry an ID that the
// response repeats, so one connection carries many calls at once and replies
// may come back in any order.
//
// The first request on a connection must be OpHello with the client's
// protocol version in Request.Version; the node answers with its own version
// or closes the connection with CodeVersion. A node started with a password
// (--native-password) requires it in the hello's Request.Value and closes
// the connection with CodeAuth when it is missing or wrong; a node without
// one ignores the field. A node connecting to another names itself in
// Request.Key: a node at its connection limit still takes a few
// connections from its members' addresses, and answers a hello there that
// names no member from that address with CodeUnavailable before closing
// the connection.
//
// Every length is bounded before anything is allocated for it: a frame
// larger than Limits.MaxFrame is refused without reading it, and every
// length prefix inside a frame is checked against the bytes that remain.
//
//	var buf bytes.Buffer
//	req := protocol.Request{ID: 1, Op: protocol.OpGet, Key: "s:abc"}
//	frame, _ := protocol.AppendFrame(nil, &req)
//	buf.Write(frame)
package protocol
