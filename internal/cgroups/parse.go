package cgroups

import (
	"regexp"
	"strings"
)

// The names container runtimes and the kubelet give cgroups (one path segment each):
//
//	systemd driver: docker-<id>.scope, cri-containerd-<id>.scope, crio-<id>.scope,
//	                libpod-<id>.scope (podman); the pod's slice kubepods[-<qos>]-pod<uid>.slice,
//	                the uid's dashes written as underscores (systemd escapes "-")
//	cgroupfs driver: /docker/<id>, /kubepods[/<qos>]/pod<uid>/<id>
//
// crio-conmon-<id>.scope and libpod-conmon-<id>.scope are the runtime's monitor, not the
// container: they name none.
var (
	reScope  = regexp.MustCompile(`^(?:docker|cri-containerd|crio|libpod|containerd)-([0-9a-f]{64})\.scope$`)
	reBareID = regexp.MustCompile(`^[0-9a-f]{64}$`)
	rePodSd  = regexp.MustCompile(`^kubepods(?:-[a-z]+)?-pod([0-9a-f]{8}_[0-9a-f]{4}_[0-9a-f]{4}_[0-9a-f]{4}_[0-9a-f]{12})\.slice$`)
	rePodFs  = regexp.MustCompile(`^pod([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$`)
)

// Parse reads the container id and Kubernetes pod uid from a cgroup path; "" for what it does
// not name. The innermost container segment wins (a container nested in another's cgroup); a
// pod uid is only read under a kubepods segment.
func Parse(path string) (containerID, podUID string) {
	kube := false
	for _, seg := range strings.Split(path, "/") {
		if strings.HasPrefix(seg, "kubepods") {
			kube = true
		}
		if m := reScope.FindStringSubmatch(seg); m != nil {
			containerID = m[1]
		} else if reBareID.MatchString(seg) {
			containerID = seg
		}
		if m := rePodSd.FindStringSubmatch(seg); m != nil {
			podUID = strings.ReplaceAll(m[1], "_", "-")
		} else if m := rePodFs.FindStringSubmatch(seg); m != nil && kube {
			podUID = m[1]
		}
	}
	return containerID, podUID
}
