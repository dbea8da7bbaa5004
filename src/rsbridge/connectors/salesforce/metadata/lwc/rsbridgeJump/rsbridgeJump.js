import { LightningElement, api } from 'lwc';
import jumpAction from '@salesforce/apex/RSBridgeActions.jump';

// The Jump forms of the vendor's "Jump To" components, as one: rsbridge's actions API builds
// the console URL (Jump Item search, push and start local or remote, RDP, VNC, shell, vPro).
const KINDS = [
    { label: 'Jump Item (search)', value: 'jump_item' },
    { label: 'Push and Start Local', value: 'push_local' },
    { label: 'Push and Start Remote', value: 'push_remote' },
    { label: 'RDP Session', value: 'rdp' },
    { label: 'VNC Session', value: 'vnc' },
    { label: 'Shell Session', value: 'shell' },
    { label: 'vPro Session', value: 'vpro' }
];
const THROUGH_JUMPOINT = ['push_remote', 'rdp', 'vnc', 'shell', 'vpro'];

export default class RsbridgeJump extends LightningElement {
    @api recordId;
    kind = 'jump_item';
    ci = '';
    jumpoint = '';
    username = '';
    protocol = 'ssh';
    port;
    console = 'rep';
    url;
    error;
    busy = false;

    kinds = KINDS;
    protocols = [
        { label: 'SSH', value: 'ssh' },
        { label: 'Telnet', value: 'telnet' }
    ];
    consoles = [
        { label: 'Representative console', value: 'rep' },
        { label: 'Web representative console', value: 'web' }
    ];

    get takesJumpoint() {
        return THROUGH_JUMPOINT.includes(this.kind);
    }

    get takesUsername() {
        return this.kind === 'rdp' || this.kind === 'shell';
    }

    get takesProtocol() {
        return this.kind === 'shell';
    }

    get takesPort() {
        return this.kind === 'shell' || this.kind === 'vnc';
    }

    setKind(event) {
        this.kind = event.detail.value;
    }

    setCi(event) {
        this.ci = event.target.value;
    }

    setJumpoint(event) {
        this.jumpoint = event.target.value;
    }

    setUsername(event) {
        this.username = event.target.value;
    }

    setProtocol(event) {
        this.protocol = event.detail.value;
    }

    setPort(event) {
        this.port = event.target.value;
    }

    setConsole(event) {
        this.console = event.detail.value;
    }

    async jump() {
        this.busy = true;
        this.error = undefined;
        this.url = undefined;
        try {
            const body = await jumpAction({
                caseId: this.recordId,
                kind: this.kind,
                ci: this.ci,
                jumpoint: this.takesJumpoint ? this.jumpoint : '',
                username: this.takesUsername ? this.username : '',
                protocol: this.takesProtocol ? this.protocol : '',
                port: this.takesPort && this.port ? Number(this.port) : null,
                console: this.console
            });
            this.url = JSON.parse(body).url;
        } catch (failure) {
            this.error = (failure && failure.body && failure.body.message) || 'rsbridge did not answer.';
        } finally {
            this.busy = false;
        }
    }
}
