# The team MCP server: each person signs in with their own Bitrix24 account (see README, "Deploy for a team").
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md LICENSE ./
COPY bitrix24_agent_tools ./bitrix24_agent_tools
RUN pip install --no-cache-dir ".[mcp,postgres,web]"
USER nobody
EXPOSE 8000
# Beyond loopback without --token the server needs the team configuration (B24_PUBLIC_URL, B24_DOMAIN,
# B24_CLIENT_ID, B24_CLIENT_SECRET; B24_STATE_URL for shared state) and refuses to start without it.
CMD ["b24-agent-tools", "mcp", "--http", "0.0.0.0:8000"]
