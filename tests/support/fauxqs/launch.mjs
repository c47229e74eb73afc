// Start fauxqs's SQS emulator bound to 127.0.0.1 only: its own CLI listens on 0.0.0.0.
// FAUXQS_PORT picks the port (default 0: a free one). Prints the endpoint URL as its first
// line of output, then serves until SIGTERM or SIGINT.
import { buildApp } from "fauxqs";

const port = Number.parseInt(process.env.FAUXQS_PORT ?? "0", 10);
const app = buildApp({ logger: false });
const address = await app.listen({ port, host: "127.0.0.1" });
console.log(address);
for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => {
    app.close().then(() => process.exit(0));
  });
}
