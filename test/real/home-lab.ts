/** The setup the home-arrival tests share: a lab, a watch on its home broker, a daemon provisioning into that home. */
import { startTestDaemon, type TestDaemon } from "../helpers/daemon.js";
import { EventWatch, RealLab, TOKEN, homePolicy } from "../helpers/real-choria.js";

export async function startHomeLab(o: { intermediate?: boolean } = {}): Promise<{ lab: RealLab; daemon: TestDaemon; home: EventWatch }> {
  const lab = await RealLab.start({ intermediate: o.intermediate });
  try {
    return await startIn(lab);
  } catch (e) {
    // the caller never gets the lab to stop: stop it here
    await lab.stop();
    throw e;
  }
}

async function startIn(lab: RealLab): Promise<{ lab: RealLab; daemon: TestDaemon; home: EventWatch }> {
  const home = await EventWatch.open(await lab.homeConnection());
  lab.onStop(() => home.close());
  const pol = lab.writePolicy("lab", homePolicy(lab));
  const daemon = await startTestDaemon(lab.provisioning.url, { ...(await lab.daemonBroker()), ...pol, ca: { dir: lab.caDir }, restart_splay: 1 }, {}, { CHORIA_PROVISIONER_TOKEN: TOKEN });
  lab.onStop(() => daemon.stop(5000));
  return { lab, daemon, home };
}
