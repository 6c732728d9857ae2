#!/bin/sh
# Regenerates the committed BPF object and Go bindings from bpf/vlan.c.
# CI: services/vlan/gen.sh && git diff --exit-code services/vlan/
# Needs clang, llvm-strip and libbpf-dev (Debian); the UAPI headers are
# architecture independent, the asm/ ones come from the multiarch dir.
set -eu
cd "$(dirname "$0")"
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
sed -i "s#-I/usr/include/[a-z0-9_]*-linux-gnu[a-z]*#-I/usr/include/${multiarch}#" gen.go
go generate ./
# Keep gen.go stable whatever the build machine's multiarch was.
sed -i "s#-I/usr/include/${multiarch}#-I/usr/include/x86_64-linux-gnu#" gen.go
