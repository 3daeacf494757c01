package node

import (
	"bufio"
	"os"
	"strconv"
	"strings"
)

// With no --max-memory, a node still must not be killed by the kernel for
// holding client data: it caps the store at a share of the memory it can
// have (the container's limit where there is one, else the machine's),
// evicting and then refusing writes past it, as it would under a
// configured limit.
const (
	cgroupShare   = 0.80 // of a container's memory limit
	physicalShare = 0.75 // of the machine's memory
)

// safetyLimit returns the store limit to use when none is configured, and
// where it came from; 0 if nothing could be read.
func safetyLimit() (int64, string) {
	if b, err := os.ReadFile("/sys/fs/cgroup/memory.max"); err == nil {
		if v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && v > 0 {
			return int64(float64(v) * cgroupShare), "80% of the cgroup memory limit"
		}
	}
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			if kib, err := strconv.ParseInt(fields[1], 10, 64); err == nil {
				return int64(float64(kib<<10) * physicalShare), "75% of physical memory"
			}
		}
	}
	return 0, ""
}
