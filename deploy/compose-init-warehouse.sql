-- deploy/docker-compose.yaml: the warehouse database beside the Dagster storage database.
CREATE DATABASE warehouse;
