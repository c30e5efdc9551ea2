include $(sort $(wildcard $(BR2_EXTERNAL_PATHMAN_PATH)/package/*/*.mk))
