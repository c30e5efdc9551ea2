#!/bin/sh
# Parses buildroot/package/pathman/pathman.mk with GNU make and a stub of
# Buildroot's package infrastructure (cargo-package, github, INSTALL),
# prints its variables, then runs what Buildroot runs at target install:
# a fake `cargo install` (BIN copied to usr/bin), the post-install hooks and
# both init installs, into WORKDIR/root.
# Usage: buildroot-make.sh REPO BIN WORKDIR
set -eu
repo=$1 bin=$2 w=$3
mkdir -p "$w/root"
cat >"$w/stub.mk" <<'MK'
define sep


endef
INSTALL := install
github = https://github.com/$(1)/$(2)/archive/$(3)
define cargo-package
PATHMAN_PKGDIR := $$(dir $$(lastword $$(MAKEFILE_LIST)))
CARGO_PACKAGE_CALLED := yes
endef
include $(BR2_EXTERNAL_PATHMAN_PATH)/external.mk
print:
	@:
	$(info PATHMAN_VERSION=$(PATHMAN_VERSION))
	$(info PATHMAN_SITE=$(PATHMAN_SITE))
	$(info PATHMAN_SOURCE=$(PATHMAN_SOURCE))
	$(info PATHMAN_LICENSE=$(PATHMAN_LICENSE))
	$(info PATHMAN_LICENSE_FILES=$(PATHMAN_LICENSE_FILES))
	$(info PATHMAN_DEPENDENCIES=$(PATHMAN_DEPENDENCIES))
	$(info PATHMAN_POST_INSTALL_TARGET_HOOKS=$(PATHMAN_POST_INSTALL_TARGET_HOOKS))
	$(info CARGO_PACKAGE_CALLED=$(CARGO_PACKAGE_CALLED))
$(BUILD_DIR)/.stamp_target_installed:
	mkdir -p $(TARGET_DIR)/usr/bin && cp $(BIN) $(TARGET_DIR)/usr/bin/pathman
	$(foreach hook,$(PATHMAN_POST_INSTALL_TARGET_HOOKS),$(call $(hook))$(sep))
	$(PATHMAN_INSTALL_INIT_SYSV)
	$(PATHMAN_INSTALL_INIT_SYSTEMD)
MK
set -- -s -f "$w/stub.mk" BR2_EXTERNAL_PATHMAN_PATH="$repo/buildroot" \
	BUILD_DIR="$repo" TARGET_DIR="$w/root" BIN="$bin"
make "$@" print
make -B "$@" "$repo/.stamp_target_installed" >/dev/null
