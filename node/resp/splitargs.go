package resp

// SplitArgs splits an inline command line into words the way Redis and
// redis-cli do: words are separated by spaces; "double quotes" allow the
// escapes \n \r \t \b \a \\ \" and \xHH; 'single quotes' allow \'. A closing
// quote must be followed by a space or the end of the line. It reports
// false for unbalanced quotes.
func SplitArgs(line string) ([]string, bool) {
	var words []string
	i := 0
	for {
		for i < len(line) && isSpace(line[i]) {
			i++
		}
		if i == len(line) {
			return words, true
		}
		var w []byte
		inDouble, inSingle, done := false, false, false
		for !done {
			if i == len(line) {
				if inDouble || inSingle {
					return nil, false
				}
				break
			}
			c := line[i]
			switch {
			case inDouble:
				switch {
				case c == '\\' && i+3 < len(line) && line[i+1] == 'x' && isHex(line[i+2]) && isHex(line[i+3]):
					w = append(w, unhex(line[i+2])<<4|unhex(line[i+3]))
					i += 3
				case c == '\\' && i+1 < len(line):
					i++
					w = append(w, unescape(line[i]))
				case c == '"':
					if i+1 < len(line) && !isSpace(line[i+1]) {
						return nil, false
					}
					done = true
				default:
					w = append(w, c)
				}
			case inSingle:
				switch {
				case c == '\\' && i+1 < len(line) && line[i+1] == '\'':
					i++
					w = append(w, '\'')
				case c == '\'':
					if i+1 < len(line) && !isSpace(line[i+1]) {
						return nil, false
					}
					done = true
				default:
					w = append(w, c)
				}
			default:
				switch c {
				case ' ', '\n', '\r', '\t', 0:
					done = true
					i-- // let the outer loop skip it
				case '"':
					inDouble = true
				case '\'':
					inSingle = true
				default:
					w = append(w, c)
				}
			}
			i++
		}
		words = append(words, string(w))
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == 0 }

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

func unescape(c byte) byte {
	switch c {
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	case 'b':
		return '\b'
	case 'a':
		return '\a'
	}
	return c
}
