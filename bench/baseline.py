"""The ceiling: a bare FastAPI app on the same machine, measured in the same run."""

from fastapi import FastAPI, Request

app = FastAPI()


@app.get("/readyz")
async def ready() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/echo")
async def echo(request: Request) -> dict[str, int]:
    return {"received": len(await request.body())}
