#!/bin/sh
# Run by OpenWrt's package CI on the target: $1 is the package, $2 its version.
case "$1" in
pathman)
	pathman --version | grep -F "${2%%-*}" || exit 1
	pathmanctl --help >/dev/null || exit 1
	;;
esac
