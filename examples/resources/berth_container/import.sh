# A container is imported as <pool>/<name>.
terraform import 'berth_container.web[3]' dc1/web-3
