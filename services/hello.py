"""The smallest useful service: greets whoever the job's extra names."""

from nbsched import Service


class Hello(Service):
    name = "api.hello"

    def handle(self):
        payload = self.request.payload
        who = payload.get("who", "world") if isinstance(payload, dict) else (payload or "world")
        self.logger.info("hello, %s", who)
        print(f"printed lines are captured too (cid {self.cid})")
        self.response.payload = {"greeted": who, "channel": self.channel}
