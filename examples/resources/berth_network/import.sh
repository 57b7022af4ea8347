# A network is imported as <pool>/<name>.
terraform import berth_network.lan dc1/lan
