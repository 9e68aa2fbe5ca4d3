package classify

import (
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// threadCPU returns the CPU time of the calling thread, which the caller
// has locked to it: on a shared machine, wall time also counts the time
// other processes had the CPU. The second result is what it measures.
func threadCPU() (time.Duration, string) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return time.Duration(time.Now().UnixNano()), "wall time"
	}
	return time.Duration(ts.Nano()), "thread CPU time"
}

func lockThread() func() {
	runtime.LockOSThread()
	return runtime.UnlockOSThread
}
