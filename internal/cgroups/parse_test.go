package cgroups

import "testing"

// The paths are the shapes the runtimes' and the kubelet's documentation and sources give
// (systemd and cgroupfs drivers); the expected ids are read off the paths by eye.
func TestParse(t *testing.T) {
	const id = "4f2a1c0e9b8d7f6a5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a29"
	const uid = "0d1f3c5e-7a9b-4c2d-8e6f-1a3b5c7d9e0f"
	const uidSd = "0d1f3c5e_7a9b_4c2d_8e6f_1a3b5c7d9e0f"
	for _, tc := range []struct{ path, container, pod string }{
		{"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidSd + ".slice/cri-containerd-" + id + ".scope", id, uid},
		{"/kubepods.slice/kubepods-pod" + uidSd + ".slice/crio-" + id + ".scope", id, uid},
		{"/kubepods.slice/kubepods-pod" + uidSd + ".slice/crio-conmon-" + id + ".scope", "", uid},
		{"/kubepods/besteffort/pod" + uid + "/" + id, id, uid},
		{"/system.slice/docker-" + id + ".scope", id, ""},
		{"/machine.slice/libpod-" + id + ".scope/container", id, ""},
		{"/machine.slice/libpod-conmon-" + id + ".scope", "", ""},
		{"/docker/" + id, id, ""},
		{"/user.slice/user-1000.slice/session-3.scope", "", ""},
		{"/pod" + uid, "", ""}, // not under kubepods
		{"/", "", ""},
		{"", "", ""},
		{"/system.slice/docker-" + id[:63] + ".scope", "", ""}, // 63 digits
	} {
		c, p := Parse(tc.path)
		if c != tc.container || p != tc.pod {
			t.Errorf("Parse(%q) = %q, %q; want %q, %q", tc.path, c, p, tc.container, tc.pod)
		}
	}
}
