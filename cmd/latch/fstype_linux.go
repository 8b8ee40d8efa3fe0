package main

import "syscall"

// networkFS are the statfs magic numbers (linux/magic.h) of the network
// filesystems on which SQLite's locking cannot be trusted.
var networkFS = map[uint32]string{
	0x6969:     "nfs",
	0x517b:     "smb",
	0xff534d42: "cifs",
	0xfe534d42: "smb2",
	0x00c36400: "ceph",
	0x5346414f: "afs",
	0x73757245: "coda",
	0x01021997: "9p",
	0x0bd00bd0: "lustre",
	0x47504653: "gpfs",
}

// filesystem names the filesystem holding path and whether it is a
// network one; "" when statfs fails.
func filesystem(path string) (string, bool) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return "", false
	}
	if name, ok := networkFS[uint32(st.Type)]; ok {
		return name, true
	}
	return "local", false
}
