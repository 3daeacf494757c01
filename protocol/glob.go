package protocol

// MatchGlob reports whether s matches the Redis-style glob pattern: '*' any
// run, '?' any byte, '[abc]', '[^a]', '[a-z]' classes and '\' escapes. Like
// Redis it works on bytes, and '*' matches '/' too (unlike path.Match).
func MatchGlob(pattern, s string) bool {
	ok, _ := MatchGlobCost(pattern, s)
	return ok
}

// MatchGlobCost is MatchGlob, also returning the work it took: the pattern
// bytes it compared. Matching takes at most about len(pattern) * len(s)
// steps, a millisecond for a pattern and a key of 1 KiB each; callers that
// match many keys (scans) bound the steps they spend, not only the keys.
func MatchGlobCost(pattern, s string) (match bool, steps int) {
	// Iterative matching with one backtrack point for the last '*'.
	var starP, starS = -1, 0
	p, i := 0, 0
	for i < len(s) {
		steps++
		if p < len(pattern) {
			switch c := pattern[p]; c {
			case '*':
				for p < len(pattern) && pattern[p] == '*' {
					p++
				}
				if p == len(pattern) {
					return true, steps
				}
				starP, starS = p, i
				continue
			case '?':
				p++
				i++
				continue
			case '[':
				np, ok := matchClass(pattern, p, s[i])
				steps += np - p
				if ok {
					p = np
					i++
					continue
				}
			case '\\':
				if p+1 < len(pattern) {
					if pattern[p+1] == s[i] {
						p += 2
						i++
						continue
					}
					break
				}
				fallthrough
			default:
				if c == s[i] {
					p++
					i++
					continue
				}
			}
		}
		if starP < 0 {
			return false, steps
		}
		starS++
		p, i = starP, starS
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern), steps
}

// matchClass matches b against the class starting at pattern[p] == '['. It
// returns the index after the class and whether b matched.
func matchClass(pattern string, p int, b byte) (int, bool) {
	p++
	not := p < len(pattern) && pattern[p] == '^'
	if not {
		p++
	}
	match := false
	for p < len(pattern) && pattern[p] != ']' {
		switch {
		case pattern[p] == '\\' && p+1 < len(pattern):
			p++
			match = match || pattern[p] == b
			p++
		case p+2 < len(pattern) && pattern[p+1] == '-' && pattern[p+2] != ']':
			lo, hi := pattern[p], pattern[p+2]
			if lo > hi {
				lo, hi = hi, lo
			}
			match = match || (b >= lo && b <= hi)
			p += 3
		default:
			match = match || pattern[p] == b
			p++
		}
	}
	if p < len(pattern) {
		p++ // the ']'
	}
	return p, match != not
}
