#!/bin/sh
# Parses openwrt/pathman/Makefile with GNU make and stub OpenWrt includes
# (rules.mk, package.mk, rust-package.mk written here), prints the variables
# it sets, then runs its Package/pathman/install recipe into DEST with a fake
# build result (BIN copied as the cargo-installed binary).
# Usage: openwrt-make.sh REPO BIN WORKDIR   (DEST = WORKDIR/root)
set -eu
repo=$1 bin=$2 w=$3
mkdir -p "$w/top/include" "$w/feed/lang/rust" "$w/feed/net" "$w/pkginstall/bin" "$w/root"
cp -R "$repo/openwrt/pathman" "$w/feed/net/pathman"
cp "$bin" "$w/pkginstall/bin/pathman"
cat >"$w/top/rules.mk" <<'MK'
INSTALL_DIR := install -d -m0755
INSTALL_BIN := install -m0755
INSTALL_CONF := install -m0600
INSTALL_DATA := install -m0644
LN := ln -sf
RULES_MK_INCLUDED := yes
MK
cat >"$w/top/include/package.mk" <<'MK'
PACKAGE_MK_INCLUDED := yes
define BuildPackage
$$(eval $$(Package/$(1)))
print:
	@:
	$$(info PKG_NAME=$$(PKG_NAME))
	$$(info PKG_VERSION=$$(PKG_VERSION))
	$$(info PKG_RELEASE=$$(PKG_RELEASE))
	$$(info PKG_SOURCE=$$(PKG_SOURCE))
	$$(info PKG_SOURCE_URL=$$(PKG_SOURCE_URL))
	$$(info PKG_HASH=$$(PKG_HASH))
	$$(info PKG_LICENSE=$$(PKG_LICENSE))
	$$(info PKG_LICENSE_FILES=$$(PKG_LICENSE_FILES))
	$$(info PKG_BUILD_DEPENDS=$$(PKG_BUILD_DEPENDS))
	$$(info RUST_PKG_LOCKED=$$(RUST_PKG_LOCKED))
	$$(info SECTION=$$(SECTION))
	$$(info CATEGORY=$$(CATEGORY))
	$$(info TITLE=$$(TITLE))
	$$(info DEPENDS=$$(DEPENDS))
	$$(info RULES_MK_INCLUDED=$$(RULES_MK_INCLUDED))
	$$(info PACKAGE_MK_INCLUDED=$$(PACKAGE_MK_INCLUDED))
	$$(info RUST_PACKAGE_MK_INCLUDED=$$(RUST_PACKAGE_MK_INCLUDED))
	$$(info RUST_BIN_PACKAGE=$$(RUST_BIN_PACKAGE))
	$$(info CONFFILES=$$(strip $$(Package/$(1)/conffiles)))
install:
	$$(call Package/$(1)/install,$$(DEST))
endef
MK
cat >"$w/feed/lang/rust/rust-package.mk" <<'MK'
RUST_PACKAGE_MK_INCLUDED := yes
RUST_ARCH_DEPENDS := @(aarch64||arm||x86_64)
define RustBinPackage
RUST_BIN_PACKAGE := $(1)
endef
MK
cd "$w/feed/net/pathman"
make -s TOPDIR="$w/top" INCLUDE_DIR="$w/top/include" print
make -s TOPDIR="$w/top" INCLUDE_DIR="$w/top/include" PKG_INSTALL_DIR="$w/pkginstall" \
	PKG_BUILD_DIR="$repo" DEST="$w/root" install >/dev/null
