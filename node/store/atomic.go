package store

import (
	"slices"

	"github.com/cloakroom/cloakroom/protocol"
	"github.com/cloakroom/cloakroom/ring"
)

// Atomic batches: the requests of one partition run under its lock as one
// step (MULTI/EXEC, a pipeline's group of one partition, a forwarded
// OpAtomic).

// ExecAtomic runs reqs, whose keys must all lie in one partition, under that
// partition's lock, so no other request sees a state between them. A guard
// (OpGet with FlagIfVersion; Version 0 means "absent") that fails aborts the
// batch before anything runs, with ErrConflict: that is WATCH. A guard
// answers its key's version, not its value. Only single-key ops are
// allowed. resps must be as long as reqs.
func (s *Store) ExecAtomic(reqs []*protocol.Request, resps []*protocol.Response) error {
	_, err := s.ExecAtomicTracked(reqs, resps, nil, -1)
	return err
}

// ExecAtomicTracked is ExecAtomic, which also returns the Change of each of
// keys (keys of the batch, each once) across the whole batch. Unless
// maxRead is negative, a batch whose reads would copy more than maxRead
// bytes of values is refused with ErrTooLarge before anything runs
// (readsFit): its replies must fit in one message, and a thousand GETs of
// one large value would otherwise copy it a thousand times.
func (s *Store) ExecAtomicTracked(reqs []*protocol.Request, resps []*protocol.Response, keys []string, maxRead int) ([]Change, error) {
	if len(reqs) == 0 {
		return nil, nil
	}
	pi := -1
	for _, r := range reqs {
		if !singleKey(r.Op) {
			return nil, protocol.Errorf(protocol.CodeBadRequest, "op %s cannot run in an atomic batch", r.Op)
		}
		q := ring.Partition(r.Key, len(s.parts))
		if pi >= 0 && q != pi {
			return nil, protocol.Errorf(protocol.CodeBadRequest, "CROSSSLOT keys in an atomic batch must share a partition")
		}
		pi = q
	}
	for _, r := range reqs {
		if r.Op == protocol.OpSet {
			if err := s.reserve(r); err != nil {
				return nil, err
			}
		}
	}
	p := s.parts[pi]
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range reqs {
		if isGuard(r) {
			_, h, ok := s.live(p, r.Key, s.now())
			if (ok && h.version != r.Version) || (!ok && r.Version != 0) {
				return nil, protocol.Errorf(protocol.CodeConflict, "watched key %q changed", r.Key)
			}
		}
	}
	if maxRead >= 0 {
		if err := s.readsFit(p, reqs, maxRead); err != nil {
			return nil, err
		}
	}
	changes := make([]Change, len(keys))
	for i, k := range keys {
		changes[i] = Change{Key: k}
		changes[i].Before, changes[i].Had = s.entryLocked(p, k)
	}
	for i, r := range reqs {
		resetResponse(resps[i])
		if isGuard(r) { // checked above; its value is not wanted
			if _, h, ok := s.live(p, r.Key, s.now()); ok {
				resps[i].Version = h.version
			} else {
				resps[i].SetErr(protocol.ErrNotFound)
			}
			continue
		}
		if err := s.execLocked(p, r, resps[i]); err != nil {
			resps[i].SetErr(err)
		}
	}
	for i, k := range keys {
		changes[i].After, changes[i].Has = s.entryLocked(p, k)
	}
	return changes, nil
}

func isGuard(r *protocol.Request) bool {
	return r.Op == protocol.OpGet && r.Flags&protocol.FlagIfVersion != 0
}

// readsFit reports ErrTooLarge if the values reqs would read, run in order
// on p (locked), may come to more than limit bytes. Each key's value is
// taken as the batch's own earlier writes leave it, at its largest: a
// conditional SET counts as applied if that makes the value larger.
func (s *Store) readsFit(p *partition, reqs []*protocol.Request, limit int) error {
	if !slices.ContainsFunc(reqs, reads) {
		return nil
	}
	now := s.now()
	var written map[string]int // value sizes the batch's writes leave
	write := func(key string, n int) {
		if written == nil {
			written = make(map[string]int)
		}
		written[key] = n
	}
	size := func(key string) int {
		if n, ok := written[key]; ok {
			return n
		}
		l, h, ok := s.live(p, key, now)
		if !ok {
			return 0
		}
		return len(valueOf(p.entryAt(l), h))
	}
	total := 0
	for _, r := range reqs {
		if reads(r) {
			total += size(r.Key)
		}
		switch r.Op {
		case protocol.OpSet:
			write(r.Key, max(size(r.Key), len(r.Value)))
		case protocol.OpGetAndDelete:
			write(r.Key, 0)
		}
		if total > limit {
			return protocol.Errorf(protocol.CodeTooLarge, "the values this atomic step reads come to more than %d bytes, more than one reply may carry; read them in smaller steps", limit)
		}
	}
	return nil
}

// reads reports whether r answers with a stored value.
func reads(r *protocol.Request) bool {
	switch r.Op {
	case protocol.OpGet, protocol.OpGetAndDelete:
		return !isGuard(r) && r.Flags&protocol.FlagNoValue == 0
	case protocol.OpGetAndTouch:
		return true
	case protocol.OpSet:
		return r.Flags&protocol.FlagReturnOld != 0
	}
	return false
}
