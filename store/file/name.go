package file

import "fmt"

// MaxNameLength is the longest lease name accepted: the name plus the
// longest suffix the store appends (".json.tmp") must fit in the 255 bytes
// a file name may have on common filesystems.
const MaxNameLength = 240

// ValidateName reports why name cannot name a lease, or nil. A valid name is
// 1 to MaxNameLength characters of lowercase letters, digits, '-' and '.',
// made of dot-separated parts that each start and end with a letter or
// digit. Such a name contains no '/', no "..", and never starts with a dot,
// so it always names a plain file inside the folder.
func ValidateName(name string) error {
	if name == "" {
		return fmt.Errorf("file store: lease name must not be empty")
	}
	if len(name) > MaxNameLength {
		return fmt.Errorf("file store: lease name %.20q... is %d characters long, more than %d", name, len(name), MaxNameLength)
	}
	partStart := 0
	for i := 0; i <= len(name); i++ {
		if i < len(name) && name[i] != '.' {
			c := name[i]
			if !isAlnum(c) && c != '-' {
				return fmt.Errorf("file store: invalid lease name %q: character %q at %d is not a lowercase letter, a digit, '-' or '.'", name, c, i)
			}
			continue
		}
		part := name[partStart:i]
		if part == "" {
			return fmt.Errorf("file store: invalid lease name %q: empty part at %d (names must not start or end with '.' nor contain \"..\")", name, partStart)
		}
		if !isAlnum(part[0]) || !isAlnum(part[len(part)-1]) {
			return fmt.Errorf("file store: invalid lease name %q: each dot-separated part must start and end with a lowercase letter or a digit", name)
		}
		partStart = i + 1
	}
	return nil
}

func isAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }
