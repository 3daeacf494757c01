package node

import (
	"bufio"
	"errors"
	"io"
	"net"

	"github.com/cloakroom/cloakroom/protocol"
)

const connBufSize = 64 << 10

// serveNative serves one native-protocol connection: it reads frames,
// runs each request and buffers the reply, flushing only when no more input
// is waiting, so that pipelined requests share one write.
func (n *Node) serveNative(c net.Conn) {
	br := bufio.NewReaderSize(c, connBufSize)
	bw := bufio.NewWriterSize(c, connBufSize)
	fr := protocol.NewFrameReader(br, n.cfg.Limits.MaxFrame())
	fw := protocol.NewFrameWriter(bw)
	dec := protocol.NewDecoder()
	peer := c.RemoteAddr().String()
	var req protocol.Request
	var resp protocol.Response
	hello := false
	for {
		frame, err := fr.Next()
		if err != nil {
			if errors.Is(err, protocol.ErrTooLarge) {
				// Framing is lost: say why, then close.
				n.log.Warn("native: frame over limit; closing", "peer", peer, "err", err)
				resp = protocol.Response{}
				resp.SetErr(err)
				_ = fw.Write(&resp)
				_ = bw.Flush()
			} else if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				n.log.Debug("native: read", "peer", peer, "err", err)
			}
			return
		}
		resp.Value = resp.Value[:0]
		if err := dec.DecodeRequest(frame, &req); err != nil {
			// The frame was whole, so the stream is still in step: reply and
			// go on serving.
			id := req.ID
			resp = protocol.Response{ID: id}
			resp.SetErr(err)
			n.metrics.badFrames.Inc()
		} else if !hello {
			if req.Op != protocol.OpHello || req.Version != protocol.Version {
				resp = protocol.Response{ID: req.ID}
				resp.SetErr(protocol.Errorf(protocol.CodeVersion, "node speaks protocol %d; open with hello version %d", protocol.Version, protocol.Version))
				_ = fw.Write(&resp)
				_ = bw.Flush()
				return
			}
			hello = true
			resp = protocol.Response{ID: req.ID, Version: protocol.Version, Value: []byte(n.cfg.Name)}
		} else {
			if req.Op == protocol.OpHello {
				resp = protocol.Response{ID: req.ID, Version: protocol.Version, Value: []byte(n.cfg.Name)}
			} else {
				n.Do(n.ctx, &req, &resp)
			}
			resp.ID = req.ID
		}
		if err := fw.Write(&resp); err != nil {
			n.log.Error("native: encode reply", "peer", peer, "err", err)
			return
		}
		if fr.Buffered() == 0 || bw.Available() < protocol.FrameHeader {
			if err := bw.Flush(); err != nil {
				return
			}
		}
	}
}
