package store

import "github.com/cloakroom/cloakroom/protocol"

// Change is a key's entry just before and just after a write, both read
// under the partition lock the write held, so that no other request's write
// comes between them. A primary whose backups did not acknowledge the
// write undoes exactly it (Revert with After's version, back to Before):
// never a write that ran just before or after it.
type Change struct {
	Key           string
	Before, After protocol.Entry
	Had, Has      bool // whether there was an entry before, and after
}

// Changed reports whether the write changed the key's entry.
func (c *Change) Changed() bool {
	return c.Has && (!c.Had || c.Before.Version != c.After.Version)
}

// ExecTracked runs a single-key request on partition pi, which must be its
// key's, or an OpDelete, as ExecOn and Exec do, and returns the Change of
// each key it names.
func (s *Store) ExecTracked(pi int, req *protocol.Request, resp *protocol.Response) []Change {
	resetResponse(resp)
	var err error
	var changes []Change
	switch {
	case req.Op == protocol.OpDelete:
		changes = make([]Change, len(req.Keys))
		for i, k := range req.Keys {
			p := s.partition(k)
			p.mu.Lock()
			changes[i] = Change{Key: k}
			changes[i].Before, changes[i].Had = s.entryLocked(p, k)
			n, derr := s.del(p, k, s.now())
			changes[i].After, changes[i].Has = s.entryLocked(p, k)
			p.mu.Unlock()
			resp.N += int64(n)
			if derr != nil {
				err = derr
			}
		}
	case !singleKey(req.Op):
		err = protocol.Errorf(protocol.CodeBadRequest, "op %s is not tracked", req.Op)
	default:
		if req.Op == protocol.OpSet {
			if err = s.reserve(req); err != nil {
				break
			}
		}
		p := s.parts[pi]
		c := Change{Key: req.Key}
		p.mu.Lock()
		c.Before, c.Had = s.entryLocked(p, req.Key)
		err = s.execLocked(p, req, resp)
		c.After, c.Has = s.entryLocked(p, req.Key)
		p.mu.Unlock()
		changes = []Change{c}
	}
	if err != nil {
		resp.SetErr(err)
	}
	return changes
}
