/**
 * kafkajs schedules a timer with a negative delay now and then (its request timeout bookkeeping), which
 * Node reports as a TimeoutNegativeWarning (the timer fires after 1 ms, which is what was meant). Other
 * warnings are still printed.
 */
export function quietTimeoutWarnings(): void {
  process.removeAllListeners('warning');
  process.on('warning', (warning) => {
    if (warning.name !== 'TimeoutNegativeWarning') process.stderr.write(`${warning.name}: ${warning.message}\n`);
  });
}
