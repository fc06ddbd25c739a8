# The specification's log query commands. Each recipe runs `otel-redis logs <command>` from this
# repository's virtual environment (dev.py creates it on first use) against the query API:
#   OTEL_REDIS_API_URL    query API base URL (default http://127.0.0.1:8080)
#   OTEL_REDIS_API_TOKEN  read token; the `token` argument wins, and without either the token that
#                         `otel-redis serve` generated into .otel-redis/api-token is used
# Every argument reaches the query; pass "" to skip one and get the API default: just logs "" "" ERROR
# `just logs-help` lists the recipes; `.venv/bin/otel-redis logs <command> --help` shows each command.

set quiet := true
set no-exit-message := true

venv_cli := justfile_directory() / ".venv" / "bin" / "otel-redis"
# the venv's otel-redis; on a fresh checkout dev.py creates the venv first
otel := if path_exists(venv_cli) == "true" { quote(venv_cli) } else { "python3 " + quote(justfile_directory() / "dev.py") + " shell -m otel_redis.cli" }

# Show recent logs (oldest to newest)
logs hours="24" event="" level="" hostname="" limit="100" token="":
    {{otel}} logs recent --hours={{quote(hours)}} --event={{quote(event)}} --level={{quote(level)}} --hostname={{quote(hostname)}} --limit={{quote(limit)}} --token={{quote(token)}}

# Query logs by client IP
logs-ip ip hours="24" event="" level="" limit="100" token="":
    {{otel}} logs ip --hours={{quote(hours)}} --event={{quote(event)}} --level={{quote(level)}} --limit={{quote(limit)}} --token={{quote(token)}} -- {{quote(ip)}}

# Query logs by proxy hostname
logs-proxy hostname hours="24" limit="100" token="":
    {{otel}} logs proxy --hours={{quote(hours)}} --limit={{quote(limit)}} --token={{quote(token)}} -- {{quote(hostname)}}

# Query logs by client hostname (reverse DNS)
logs-hostname hostname hours="24" limit="100" token="":
    {{otel}} logs hostname --hours={{quote(hours)}} --limit={{quote(limit)}} --token={{quote(token)}} -- {{quote(hostname)}}

# Query logs by OAuth client
logs-oauth-client client-id hours="24" event="" level="" limit="100" token="":
    {{otel}} logs oauth-client --hours={{quote(hours)}} --event={{quote(event)}} --level={{quote(level)}} --limit={{quote(limit)}} --token={{quote(token)}} -- {{quote(client-id)}}

# Search logs with filters
logs-search query="" hours="24" event="" level="" hostname="" limit="100" token="":
    {{otel}} logs search --hours={{quote(hours)}} --event={{quote(event)}} --level={{quote(level)}} --hostname={{quote(hostname)}} --limit={{quote(limit)}} --token={{quote(token)}} -- {{quote(query)}}

# Show recent errors
logs-errors hours="24" limit="100" token="":
    {{otel}} logs errors --hours={{quote(hours)}} --limit={{quote(limit)}} --token={{quote(token)}}

# Detailed errors with debugging
logs-errors-debug hours="24" include-warnings="false" limit="100" token="":
    {{otel}} logs errors-debug --hours={{quote(hours)}} --include-warnings={{quote(include-warnings)}} --limit={{quote(limit)}} --token={{quote(token)}}

# Follow logs in real-time with ANSI colors
logs-follow interval="1" event="" level="" hostname="" token="":
    {{otel}} logs follow --interval={{quote(interval)}} --event={{quote(event)}} --level={{quote(level)}} --hostname={{quote(hostname)}} --token={{quote(token)}}

# OAuth activity summary
logs-oauth ip hours="24" limit="100" token="":
    {{otel}} logs oauth --hours={{quote(hours)}} --limit={{quote(limit)}} --token={{quote(token)}} -- {{quote(ip)}}

# Full OAuth flow debugging
logs-oauth-debug ip hours="24" limit="100" token="":
    {{otel}} logs oauth-debug --hours={{quote(hours)}} --limit={{quote(limit)}} --token={{quote(token)}} -- {{quote(ip)}}

# Track OAuth flows
logs-oauth-flow client-id="" username="" hours="24" token="":
    {{otel}} logs oauth-flow --client-id={{quote(client-id)}} --username={{quote(username)}} --hours={{quote(hours)}} --token={{quote(token)}}

# Show event statistics
logs-stats hours="24" token="":
    {{otel}} logs stats --hours={{quote(hours)}} --token={{quote(token)}}

# Test logging system
logs-test token="":
    {{otel}} logs test --token={{quote(token)}}

# Query logs by user ID
logs-user user-id hours="24" limit="100" token="":
    {{otel}} logs user --hours={{quote(hours)}} --limit={{quote(limit)}} --token={{quote(token)}} -- {{quote(user-id)}}

# Query logs by session ID
logs-session session-id hours="24" limit="100" token="":
    {{otel}} logs session --hours={{quote(hours)}} --limit={{quote(limit)}} --token={{quote(token)}} -- {{quote(session-id)}}

# Query logs by HTTP method
logs-method method hours="24" limit="100" token="":
    {{otel}} logs method --hours={{quote(hours)}} --limit={{quote(limit)}} --token={{quote(token)}} -- {{quote(method)}}

# Query logs by status code
logs-status code hours="24" limit="100" token="":
    {{otel}} logs status --hours={{quote(hours)}} --limit={{quote(limit)}} --token={{quote(token)}} -- {{quote(code)}}

# Query slow requests
logs-slow threshold-ms="1000" hours="24" limit="100" token="":
    {{otel}} logs slow --threshold-ms={{quote(threshold-ms)}} --hours={{quote(hours)}} --limit={{quote(limit)}} --token={{quote(token)}}

# Query logs by path pattern
logs-path pattern hours="24" limit="100" token="":
    {{otel}} logs path --hours={{quote(hours)}} --limit={{quote(limit)}} --token={{quote(token)}} -- {{quote(pattern)}}

# Query logs by OAuth username
logs-oauth-user username hours="24" limit="100" token="":
    {{otel}} logs oauth-user --hours={{quote(hours)}} --limit={{quote(limit)}} --token={{quote(token)}} -- {{quote(username)}}

# Docker container logs only
logs-docker lines="100" follow="false":
    {{otel}} logs docker --lines={{quote(lines)}} --follow={{quote(follow)}}

# Service-specific Docker logs
logs-service service="otel-redis" lines="100":
    {{otel}} logs service --lines={{quote(lines)}} -- {{quote(service)}}

# Clear all log entries from Redis
logs-clear token="":
    {{otel}} logs clear --token={{quote(token)}}

# Show logging commands help
logs-help:
    {{otel}} logs help
