"""Framework faces over the Toolbox: LangChain (``langchain``), LlamaIndex (``llama_index``) and MCP
(``mcp``)."""
