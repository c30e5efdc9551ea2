################################################################################
#
# pathman
#
################################################################################

PATHMAN_VERSION = 0.1.0
# The vendored release tarball made by pathman's release script. Placeholder
# site: set it to where releases are published (or use
# $(call github,OWNER,pathman,v$(PATHMAN_VERSION)) for a tag archive, which
# Buildroot's cargo download post-process vendors itself).
PATHMAN_SOURCE = pathman-$(PATHMAN_VERSION).tar.gz
PATHMAN_SITE = https://example.org/pathman/releases/download/v$(PATHMAN_VERSION)
PATHMAN_LICENSE = MIT or Apache-2.0
PATHMAN_LICENSE_FILES = LICENSE-MIT LICENSE-APACHE
PATHMAN_DEPENDENCIES = dbus

# cargo install puts the binary into /usr/bin; pathman lives in /usr/sbin.
define PATHMAN_INSTALL_LAYOUT
	mkdir -p $(TARGET_DIR)/usr/sbin
	mv -f $(TARGET_DIR)/usr/bin/pathman $(TARGET_DIR)/usr/sbin/pathman
	ln -sf pathman $(TARGET_DIR)/usr/sbin/pathmand
	ln -sf pathman $(TARGET_DIR)/usr/sbin/pathmanctl
	$(INSTALL) -D -m 0644 $(@D)/board-configs/main.conf.example \
		$(TARGET_DIR)/etc/pathman/main.conf
	$(INSTALL) -D -m 0644 $(@D)/board-configs/dbus/pathman.conf \
		$(TARGET_DIR)/usr/share/dbus-1/system.d/pathman.conf
endef
PATHMAN_POST_INSTALL_TARGET_HOOKS += PATHMAN_INSTALL_LAYOUT

define PATHMAN_INSTALL_INIT_SYSV
	$(INSTALL) -D -m 0755 $(PATHMAN_PKGDIR)/S45pathman \
		$(TARGET_DIR)/etc/init.d/S45pathman
endef

define PATHMAN_INSTALL_INIT_SYSTEMD
	$(INSTALL) -D -m 0644 $(PATHMAN_PKGDIR)/pathman.service \
		$(TARGET_DIR)/usr/lib/systemd/system/pathman.service
endef

$(eval $(cargo-package))
