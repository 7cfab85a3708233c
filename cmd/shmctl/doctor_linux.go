//go:build linux

package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"unsafe"

	"github.com/shmkit/shmkit/internal/memfd"

	"github.com/dustin/go-humanize"
	"golang.org/x/sys/unix"

	"github.com/shmkit/shmkit/internal/holders"
	"github.com/shmkit/shmkit/internal/procfs"
	"github.com/shmkit/shmkit/segment"
)

// containerShmDefault is the /dev/shm size Docker, containerd and podman
// give a container unless told otherwise: 64 MB.
const containerShmDefault = 64 << 20

// runChecks runs every check, in the order they are printed.
func runChecks() []finding {
	var fs []finding
	for _, check := range []func() []finding{
		checkDevShm, checkSysV, checkMqueue, checkHugePages, checkMemlock, checkOvercommit,
		checkPIDNamespace, checkProcfs, checkKernel, checkStale,
	} {
		fs = append(fs, check()...)
	}
	return fs
}

func ok(check, format string, a ...any) finding {
	return finding{Check: check, Severity: sevOK, Finding: fmt.Sprintf(format, a...)}
}

func ib(n uint64) string { return humanize.IBytes(n) }

// checkDevShm looks at the filesystem POSIX segments live on.
func checkDevShm() []finding {
	dir := segment.POSIXDir
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return []finding{{Check: "devshm", Severity: sevFail,
			Finding: fmt.Sprintf("%s: %v; POSIX segments cannot be created", dir, err),
			Fix:     "mount a tmpfs there: mount -t tmpfs -o mode=1777,size=1G tmpfs " + dir}}
	}
	var out []finding
	bsize := uint64(st.Bsize)
	total, avail := uint64(st.Blocks)*bsize, uint64(st.Bavail)*bsize
	if int64(st.Type) != unix.TMPFS_MAGIC {
		out = append(out, finding{Check: "devshm.type", Severity: sevWarn,
			Finding: fmt.Sprintf("%s is not a tmpfs (filesystem magic %#x): POSIX segments are backed by disk", dir, st.Type),
			Fix:     "mount -t tmpfs -o mode=1777,size=1G tmpfs " + dir})
	} else {
		out = append(out, ok("devshm.type", "%s is a tmpfs", dir))
	}
	sizeFix := "give it more: Docker `--shm-size=1g`, Compose `shm_size: 1gb`, Kubernetes an emptyDir " +
		"{medium: Memory, sizeLimit: 1Gi} mounted at /dev/shm, a host `mount -o remount,size=1G /dev/shm`"
	switch {
	case total == 0:
		out = append(out, ok("devshm.size", "%s has no size limit", dir))
	case total <= containerShmDefault:
		out = append(out, finding{Check: "devshm.size", Severity: sevWarn,
			Finding: fmt.Sprintf("%s is only %s (%d bytes; 64 MB is the default of container runtimes): "+
				"larger segments fail to create with ENOSPC", dir, ib(total), total),
			Fix: sizeFix})
	default:
		out = append(out, ok("devshm.size", "%s is %s", dir, ib(total)))
	}
	switch {
	case total == 0:
	case avail < 1<<20:
		out = append(out, finding{Check: "devshm.free", Severity: sevFail,
			Finding: fmt.Sprintf("%s is full: %s free of %s; no POSIX segment can be created", dir, ib(avail), ib(total)),
			Fix:     "remove dead segments (shmctl gc) and other files there, or " + sizeFix})
	case avail < total/10:
		out = append(out, finding{Check: "devshm.free", Severity: sevWarn,
			Finding: fmt.Sprintf("%s is nearly full: %s free of %s", dir, ib(avail), ib(total)),
			Fix:     "remove dead segments (shmctl gc --dry-run, then shmctl gc), or " + sizeFix})
	default:
		out = append(out, ok("devshm.free", "%s free of %s", ib(avail), ib(total)))
	}

	var fi unix.Stat_t
	if err := unix.Stat(dir, &fi); err == nil {
		mode := fi.Mode & 0o7777
		switch {
		case mode&0o002 != 0 && mode&unix.S_ISVTX == 0:
			out = append(out, finding{Check: "devshm.perms", Severity: sevWarn,
				Finding: fmt.Sprintf("%s is world-writable without the sticky bit (mode %04o): any user can delete or replace another user's segments", dir, mode),
				Fix:     "chmod 1777 " + dir})
		case fi.Uid != 0:
			out = append(out, finding{Check: "devshm.perms", Severity: sevWarn,
				Finding: fmt.Sprintf("%s is owned by uid %d, not root (mode %04o): that user controls every segment there", dir, fi.Uid, mode),
				Fix:     "chown root:root " + dir + " && chmod 1777 " + dir})
		default:
			out = append(out, ok("devshm.perms", "%s mode %04o, owner root", dir, mode))
		}
	}
	if err := unix.Access(dir, unix.W_OK|unix.X_OK); err != nil {
		out = append(out, finding{Check: "devshm.access", Severity: sevFail,
			Finding: fmt.Sprintf("this user (uid %d) cannot create files in %s: %v", os.Getuid(), dir, err),
			Fix:     "chmod 1777 " + dir})
	}
	return out
}

// sysctlUint reads an unsigned integer from a /proc/sys file; shmmax and
// shmall default to values near ULONG_MAX, beyond procfs.ReadInt.
func sysctlUint(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
}

// checkSysV reports the SysV shared memory limits and probes the syscalls.
func checkSysV() []finding {
	var out []finding
	shmmax, err1 := sysctlUint("/proc/sys/kernel/shmmax")
	shmall, err2 := sysctlUint("/proc/sys/kernel/shmall")
	shmmni, err3 := procfs.ReadInt("/proc/sys/kernel/shmmni")
	if err := errors.Join(err1, err2, err3); err != nil {
		out = append(out, finding{Check: "sysv.limits", Severity: sevInfo,
			Finding: fmt.Sprintf("SysV limits unreadable: %v", flatError{err})})
	} else {
		all := shmall * uint64(os.Getpagesize())
		if shmall > 1<<50 { // the "unlimited" default, near ULONG_MAX, overflows the product
			all = 1 << 63
		}
		used := 0
		if b, err := os.ReadFile("/proc/sysvipc/shm"); err == nil {
			used = max(0, bytes.Count(b, []byte("\n"))-1)
		}
		limits := fmt.Sprintf("shmmax %s, shmall %s, shmmni %d (%d segments in use)", ib(shmmax), ib(all), shmmni, used)
		switch {
		case shmmax < containerShmDefault || all < containerShmDefault:
			out = append(out, finding{Check: "sysv.limits", Severity: sevWarn,
				Finding: "SysV segments are small here: " + limits,
				Fix:     "sysctl -w kernel.shmmax=18446744073692774399 kernel.shmall=18446744073692774399"})
		case int64(used) >= shmmni*9/10:
			out = append(out, finding{Check: "sysv.limits", Severity: sevWarn,
				Finding: "nearly every SysV segment id is taken: " + limits,
				Fix:     "remove dead segments (shmctl gc), or sysctl -w kernel.shmmni=32768"})
		default:
			out = append(out, ok("sysv.limits", "%s", limits))
		}
	}
	if v, err := procfs.ReadInt("/proc/sys/kernel/shm_rmid_forced"); err == nil && v != 0 {
		out = append(out, finding{Check: "sysv.rmid_forced", Severity: sevWarn,
			Finding: "kernel.shm_rmid_forced=1: a SysV segment is destroyed when its last process detaches, so it cannot outlive its users",
			Fix:     "sysctl -w kernel.shm_rmid_forced=0, or use the posix backend"})
	}
	id, err := unix.SysvShmGet(unix.IPC_PRIVATE, os.Getpagesize(), unix.IPC_CREAT|0o600)
	if err != nil {
		out = append(out, finding{Check: "sysv.available", Severity: sevWarn,
			Finding: fmt.Sprintf("shmget fails: %v; the sysv backend cannot be used (a seccomp profile or an IPC namespace limit?)", err),
			Fix:     "allow shmget/shmat/shmctl in the seccomp profile, or use the posix backend"})
	} else {
		unix.SysvShmCtl(id, unix.IPC_RMID, nil) // never attached: destroyed at once
	}
	return out
}

// checkMqueue reports the POSIX message queue limits (shmctl bench compares
// shmkit against message queues; the toolkit itself does not use them).
func checkMqueue() []finding {
	msgMax, err1 := procfs.ReadInt("/proc/sys/fs/mqueue/msg_max")
	msgSize, err2 := procfs.ReadInt("/proc/sys/fs/mqueue/msgsize_max")
	queues, err3 := procfs.ReadInt("/proc/sys/fs/mqueue/queues_max")
	if err := errors.Join(err1, err2, err3); err != nil {
		return []finding{{Check: "mqueue.limits", Severity: sevInfo, Finding: fmt.Sprintf("POSIX mq limits unreadable: %v", flatError{err})}}
	}
	f := finding{Check: "mqueue.limits", Severity: sevInfo,
		Finding: fmt.Sprintf("POSIX mq: msg_max %d, msgsize_max %d, queues_max %d (only shmctl bench uses message queues)", msgMax, msgSize, queues)}
	if msgSize < 64<<10 {
		f.Fix = "for the bench's larger mq cells: sysctl -w fs.mqueue.msgsize_max=1048576 fs.mqueue.msg_max=64"
	}
	return []finding{f}
}

// meminfo reads the values of /proc/meminfo (kB figures in bytes).
func meminfo() map[string]uint64 {
	out := map[string]uint64{}
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return out
	}
	for line := range strings.Lines(string(b)) {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			continue
		}
		if len(f) > 1 && f[1] == "kB" {
			n <<= 10
		}
		out[k] = n
	}
	return out
}

// checkHugePages reports reserved huge pages (Options.HugePages needs them).
func checkHugePages() []finding {
	m := meminfo()
	total, free, size := m["HugePages_Total"], m["HugePages_Free"], m["Hugepagesize"]
	thp := "unknown"
	if b, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/shmem_enabled"); err == nil {
		thp = strings.TrimSpace(string(b))
	}
	if total == 0 {
		return []finding{{Check: "hugepages", Severity: sevInfo,
			Finding: fmt.Sprintf("no huge pages reserved (page size %s; shmem THP: %s): segments created with HugePages fail with ErrHugePages", ib(size), thp),
			Fix:     "reserve some if you want them: sysctl -w vm.nr_hugepages=512 (1 GiB of 2 MiB pages)"}}
	}
	return []finding{ok("hugepages", "%d of %d huge pages of %s free (shmem THP: %s)", free, total, ib(size), thp)}
}

// checkMemlock reports how much a process may mlock (Options.Lock).
func checkMemlock() []finding {
	if holders.HasCap(holders.CapIPCLock) {
		return []finding{ok("memlock", "CAP_IPC_LOCK: no memlock limit applies")}
	}
	var r unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_MEMLOCK, &r); err != nil {
		return []finding{{Check: "memlock", Severity: sevInfo, Finding: fmt.Sprintf("getrlimit RLIMIT_MEMLOCK: %v", err)}}
	}
	if r.Cur == unix.RLIM_INFINITY {
		return []finding{ok("memlock", "memlock unlimited")}
	}
	if r.Cur < containerShmDefault {
		return []finding{{Check: "memlock", Severity: sevWarn,
			Finding: fmt.Sprintf("memlock limit %s: segments larger than that cannot be locked (Options.Lock fails)", ib(r.Cur)),
			Fix:     "ulimit -l unlimited, systemd LimitMEMLOCK=infinity, Docker --ulimit memlock=-1, or CAP_IPC_LOCK"}}
	}
	return []finding{ok("memlock", "memlock limit %s", ib(r.Cur))}
}

// checkOvercommit reports the overcommit policy.
func checkOvercommit() []finding {
	v, err := procfs.ReadInt("/proc/sys/vm/overcommit_memory")
	if err != nil {
		return []finding{{Check: "overcommit", Severity: sevInfo, Finding: fmt.Sprintf("overcommit policy unreadable: %v", err)}}
	}
	if v == 2 {
		return []finding{{Check: "overcommit", Severity: sevWarn,
			Finding: "vm.overcommit_memory=2 (strict): every writable shared mapping counts against CommitLimit, so large segments fail with ENOMEM",
			Fix:     "sysctl -w vm.overcommit_memory=0, or raise vm.overcommit_ratio"}}
	}
	return []finding{ok("overcommit", "vm.overcommit_memory=%d", v)}
}

// checkPIDNamespace says whether liveness checks see every process.
func checkPIDNamespace() []finding {
	ino, initial, err := holders.PIDNamespace()
	switch {
	case err != nil:
		return []finding{{Check: "pidns", Severity: sevInfo, Finding: fmt.Sprintf("pid namespace unknown: %v", err)}}
	case initial:
		return []finding{ok("pidns", "the host's pid namespace: every participant's liveness can be checked")}
	}
	return []finding{{Check: "pidns", Severity: sevWarn,
		Finding: fmt.Sprintf("pid namespace %d, not the host's: participants in another pid namespace cannot be checked for liveness "+
			"(their pids mean nothing here), and gc cannot see whether they map a segment", ino),
		Fix: "run every participant and shmctl in one pid namespace (Docker --pid=host or a shared --pid=container:NAME, " +
			"Kubernetes shareProcessNamespace: true), and run gc there"}}
}

// checkProcfs says whether gc and rm can see every process's mappings.
func checkProcfs() []finding {
	pt, err := scanProcs()
	if err != nil {
		return []finding{{Check: "procfs", Severity: sevWarn, Finding: fmt.Sprintf("cannot scan /proc: %v; gc removes nothing and rm needs --force", err),
			Fix: "mount proc on /proc"}}
	}
	var out []finding
	if opt := procHidepid(); opt != "" {
		out = append(out, finding{Check: "procfs.hidepid", Severity: sevWarn,
			Finding: fmt.Sprintf("/proc is mounted with %s: other users' processes are hidden, so gc cannot see them "+
				"map a segment, and their liveness cannot be checked", opt),
			Fix: "run shmctl gc as root or as a member of the gid= group of the /proc mount, or remount /proc without hidepid"})
	}
	return append(out, procReadable(pt)...)
}

// procHidepid returns the hidepid= option of the /proc mount, "" if none.
func procHidepid() string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return ""
	}
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) < 5 || f[4] != "/proc" {
			continue
		}
		for _, opt := range strings.Split(f[len(f)-1], ",") {
			if strings.HasPrefix(opt, "hidepid=") && opt != "hidepid=0" && opt != "hidepid=off" {
				return opt
			}
		}
	}
	return ""
}

// procReadable says whether the maps of every visible process are readable.
func procReadable(pt *procTable) []finding {
	blind := pt.Blind()
	switch {
	case len(blind) == 0:
		return []finding{ok("procfs", "the maps of every visible process are readable")}
	case pt.BlindCounted():
		return []finding{{Check: "procfs", Severity: sevWarn,
			Finding: fmt.Sprintf("the maps of %d process(es) are unreadable to this user: gc keeps every segment they could access", len(blind)),
			Fix:     "run shmctl gc as root (CAP_SYS_PTRACE), and check /proc is not mounted with hidepid"}}
	}
	return []finding{{Check: "procfs", Severity: sevInfo,
		Finding: fmt.Sprintf("the maps of pid(s) %s are unreadable even with CAP_SYS_PTRACE (non-dumpable, or another user namespace): "+
			"gc assumes they hold no segment", pidList(blind, 8))}}
}

// checkKernel probes the kernel features shmkit uses.
func checkKernel() []finding {
	var out []finding
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		out = append(out, finding{Check: "kernel", Severity: sevInfo,
			Finding: fmt.Sprintf("Linux %s on %s", unix.ByteSliceToString(u.Release[:]), unix.ByteSliceToString(u.Machine[:]))})
	}

	var word uint32
	const futexWake = 1
	if _, _, e := unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(&word)), futexWake, 1, 0, 0, 0); e != 0 {
		out = append(out, finding{Check: "kernel.futex", Severity: sevFail,
			Finding: fmt.Sprintf("futex: %v; blocking rings and allocators cannot wait", e),
			Fix:     "allow futex in the seccomp profile"})
	} else {
		out = append(out, ok("kernel.futex", "futex works"))
	}

	// futex_waitv with no waiters: EINVAL where it exists, ENOSYS where not.
	if _, _, e := unix.Syscall6(unix.SYS_FUTEX_WAITV, 0, 0, 0, 0, 0, 0); e == unix.ENOSYS {
		out = append(out, finding{Check: "kernel.futex_waitv", Severity: sevWarn,
			Finding: "futex_waitv: ENOSYS (Linux 5.16 or later has it): waiting on several words at once is not available",
			Fix:     "run on Linux 5.16 or later, or allow futex_waitv in the seccomp profile"})
	} else {
		out = append(out, ok("kernel.futex_waitv", "futex_waitv available"))
	}

	if fd, err := unix.PidfdOpen(os.Getpid(), 0); err != nil {
		out = append(out, finding{Check: "kernel.pidfd", Severity: sevWarn,
			Finding: fmt.Sprintf("pidfd_open: %v (Linux 5.3 or later has it): peers' deaths are noticed by polling /proc, not at once", err),
			Fix:     "run on Linux 5.3 or later, or allow pidfd_open in the seccomp profile"})
	} else {
		unix.Close(fd)
		out = append(out, ok("kernel.pidfd", "pidfd_open available"))
	}

	if err := probeMemfdSeals(); err != nil {
		out = append(out, finding{Check: "kernel.memfd_seals", Severity: sevFail,
			Finding: fmt.Sprintf("memfd with seals: %v; the memfd backend cannot be used", err),
			Fix:     "run on Linux 3.17 or later with memfd_create and F_ADD_SEALS allowed by the seccomp profile"})
	} else {
		out = append(out, ok("kernel.memfd_seals", "memfd_create with F_SEAL_SHRINK|F_SEAL_GROW works"))
	}
	return out
}

// probeMemfdSeals creates a sealed memfd, as the memfd backend does
// (internal/memfd, the backend's own code).
func probeMemfdSeals() error {
	f, err := memfd.Create("shmctl-doctor", int64(os.Getpagesize()))
	if err != nil {
		return err
	}
	defer f.Close()
	if err := memfd.Seal(f); err != nil {
		return err
	}
	sealed, err := memfd.Sealed(f)
	if err != nil {
		return err
	}
	if !sealed {
		return fmt.Errorf("seals did not take")
	}
	return nil
}

// checkStale counts the segments gc would remove.
func checkStale() []finding {
	infos, _ := segment.List()
	pt, err := scanProcs()
	if err != nil {
		return nil // checkProcfs reports it
	}
	var dead []string
	for _, info := range infos {
		if j := judge(pt, info); j.Dead {
			dead = append(dead, fmt.Sprintf("%v %s", info.Backend, info.Name))
		}
	}
	if len(dead) == 0 {
		return []finding{ok("segments.dead", "%d shmkit segment(s), none dead", len(infos))}
	}
	shown := dead
	if len(shown) > 5 {
		shown = append(shown[:5:5], fmt.Sprintf("and %d more", len(dead)-5))
	}
	return []finding{{Check: "segments.dead", Severity: sevWarn,
		Finding: fmt.Sprintf("%d of %d shmkit segment(s) are held by nothing and use memory: %s", len(dead), len(infos), strings.Join(shown, ", ")),
		Fix:     "shmctl gc --dry-run to review, then shmctl gc"}}
}
