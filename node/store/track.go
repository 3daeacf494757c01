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
		err = s.deleteKeys(req.Keys, req.Value, resp, changes)
	case !singleKey(req.Op):
		err = protocol.Errorf(protocol.CodeBadRequest, "op %s is not tracked", req.Op)
	default:
		changes = make([]Change, 1)
		err = s.execOne(s.parts[pi], req, resp, &changes[0])
	}
	if err != nil {
		resp.SetErr(err)
	}
	return changes
}
