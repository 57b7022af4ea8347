# A volume is imported as <pool>/<name>.
terraform import 'berth_volume.pgdata[0]' dc1/pgdata-0
