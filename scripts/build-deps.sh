# Sourced by scripts/run.sh and scripts/test.sh: adds to `need_apt` what building the binary
# needs and is missing: a C toolchain and make (jemalloc, the global allocator, is built from
# source), pkg-config, hwloc (machine topology) with libudev, which Debian's hwloc links, and
# protoc with protobuf's own .proto files (the etcd client of the scale-out compiles etcd's
# gRPC protos, which import google/protobuf/descriptor.proto: libprotobuf-dev, only a
# recommendation of protobuf-compiler, which --no-install-recommends leaves out).
command -v cc >/dev/null || need_apt+=(gcc)
command -v make >/dev/null || need_apt+=(make)
command -v pkg-config >/dev/null || need_apt+=(pkg-config)
[ -e /usr/include/hwloc.h ] || need_apt+=(libhwloc-dev)
[ -e /usr/include/libudev.h ] || need_apt+=(libudev-dev)
command -v protoc >/dev/null || need_apt+=(protobuf-compiler)
[ -e /usr/include/google/protobuf/descriptor.proto ] || need_apt+=(libprotobuf-dev)
