%% The Erlang side of `npm run bench -- pg --compare erlang`: the same workload as ours, run
%% on Erlang's `pg` (OTP 25.1+, for pg:monitor) on a cluster of BEAM nodes.
%%
%% Every node runs a watcher that calls pg:monitor(bench) and records, on the OS wall clock
%% (os:system_time(microsecond), shared by the processes of a host), when each member joined
%% and when no member of a node was left in its view.
%% 1. Mesh round trip: a message to an echo process on the second node and back, DurationMs/5.
%% 2. Joins, for DurationMs: node I mod N spawns a process that notes the time and calls
%%    pg:join(bench, self()); the figure is the latest time any other node's monitor saw it,
%%    minus that time.
%% 3. Down cleanup: the last node joins Members processes; once every node sees them, this
%%    prints `ready` on stdout and the bench kills that node with SIGKILL (noting the time);
%%    every other watcher reports when none of its members is left (and when nodedown came).
%%
%% Started as: erl ... -run pg_bench main PeersCsv DurationMs Members OutFile
%% It writes OutFile (`rtt U` per round trip, `join U` per join, `gone T` and `down T` per
%% surviving node, T in OS microseconds) and halts the surviving nodes.
%%
%% Before any measurement every node is connected to every other one and runs its `pg` scope
%% (and `rex`): a node answers pings as soon as its distribution is up, which is before the
%% kernel starts `pg`, and a watcher spawned there then would die in pg:monitor (a lost
%% `watching`: the bench used to hang on it). Every wait is bounded: on a timeout this prints
%% what it waited for on stderr and halts with status 2.
-module(pg_bench).
-export([main/1, watcher/1, echo/0, member/2]).

-define(WAIT, 15000).

main([PeersCsv, Duration, Members, Out]) ->
    Peers = [list_to_atom(P) || P <- string:tokens(PeersCsv, ",")],
    ok = connect(Peers, 200),
    Nodes = [node() | Peers],
    ok = ready(Nodes, 200),
    D = list_to_integer(Duration),
    Self = self(),
    Watchers = [{N, spawn(N, ?MODULE, watcher, [Self])} || N <- Nodes],
    [receive {watching, W} -> ok after ?WAIT -> fail({watcher_not_started, N}) end || {N, W} <- Watchers],
    %% 1. round trip node 1 -> node 2
    Echo = spawn(lists:nth(2, Nodes), ?MODULE, echo, []),
    Rtts = rtt_loop(Echo, erlang:monotonic_time(microsecond) + D * 200, []),
    exit(Echo, kill),
    %% 2. joins
    Joins = join_loop(Nodes, Watchers, 0, erlang:monotonic_time(microsecond) + D * 1000, []),
    %% 3. down cleanup of the last node
    Victim = lists:last(Nodes),
    M = list_to_integer(Members),
    Pids = [spawn(Victim, ?MODULE, member, [Self, os:system_time(microsecond)]) || _ <- lists:seq(1, M)],
    [receive {joined, P, _} -> ok after ?WAIT -> fail({member_not_joined, Victim}) end || P <- Pids],
    [seen(W, P) || {N, W} <- Watchers, N =/= Victim, P <- Pids],
    Survivors = [{N, W} || {N, W} <- Watchers, N =/= Victim],
    [W ! {watch_gone, Victim, Self} || {_, W} <- Survivors],
    io:format("ready~n"),
    Gone = [receive {gone, W, G, Dn} -> {G, Dn} after 30000 -> {0, 0} end || {_, W} <- Survivors],
    Lines = [[io_lib:format("rtt ~B~n", [X]) || X <- Rtts],
             [io_lib:format("join ~B~n", [X]) || X <- Joins],
             [io_lib:format("gone ~B~ndown ~B~n", [G, Dn]) || {G, Dn} <- Gone]],
    ok = file:write_file(Out, Lines),
    [rpc:cast(P, erlang, halt, []) || P <- Peers, P =/= Victim],
    timer:sleep(100),
    halt(0).

connect(Peers, 0) -> fail({cannot_connect, [P || P <- Peers, net_adm:ping(P) =/= pong]});
connect(Peers, Tries) ->
    case lists:all(fun(P) -> net_adm:ping(P) =:= pong end, Peers) of
        true -> ok;
        false -> timer:sleep(50), connect(Peers, Tries - 1)
    end.

%% Every node runs `pg` and `rex`, and is connected to every other node.
ready(Nodes, 0) -> fail({not_ready, [{N, rpc:call(N, erlang, nodes, [], 1000)} || N <- Nodes]});
ready(Nodes, Tries) ->
    Ok = fun(N) ->
        is_pid(rpc:call(N, erlang, whereis, [pg], 1000)) andalso
            lists:all(fun(M) -> M =:= N orelse rpc:call(N, net_adm, ping, [M], 1000) =:= pong end, Nodes)
    end,
    case lists:all(Ok, Nodes) of
        true -> ok;
        false -> timer:sleep(50), ready(Nodes, Tries - 1)
    end.

fail(What) ->
    io:format(standard_error, "pg_bench: gave up: ~p~n", [What]),
    halt(2).

echo() -> receive {From, X} -> From ! {self(), X}, echo() end.

rtt_loop(Echo, End, Acc) ->
    T0 = erlang:monotonic_time(microsecond),
    case T0 >= End of
        true -> Acc;
        false ->
            Echo ! {self(), ping},
            receive {Echo, ping} -> ok after ?WAIT -> fail({no_echo, node(Echo)}) end,
            rtt_loop(Echo, End, [max(1, erlang:monotonic_time(microsecond) - T0) | Acc])
    end.

join_loop(Nodes, Watchers, I, End, Acc) ->
    case erlang:monotonic_time(microsecond) >= End of
        true -> Acc;
        false ->
            N = lists:nth(I rem length(Nodes) + 1, Nodes),
            P = spawn(N, ?MODULE, member, [self(), 0]),
            T0 = receive {joined, P, T} -> T after ?WAIT -> fail({member_not_joined, N}) end,
            Seen = [seen(W, P) || {Other, W} <- Watchers, Other =/= N],
            join_loop(Nodes, Watchers, I + 1, End, [max(1, lists:max(Seen) - T0) | Acc])
    end.

seen(W, P) ->
    W ! {seen, P, self()},
    receive {seen, W, P, T} -> T after ?WAIT -> fail({member_not_seen, node(P), by, node(W)}) end.

%% A group member: notes the time, joins, tells the coordinator, then lives until killed.
member(Parent, _) ->
    T0 = os:system_time(microsecond),
    ok = pg:join(bench, self()),
    Parent ! {joined, self(), T0},
    receive stop -> ok end.

watcher(Parent) ->
    {_Ref, _} = pg:monitor(bench),
    ok = net_kernel:monitor_nodes(true),
    Parent ! {watching, self()},
    watch(#{}, #{}, #{}, []).

watch(Seen, Waiting, Downs, Gone) ->
    receive
        {_Ref, join, bench, Pids} ->
            T = os:system_time(microsecond),
            S1 = lists:foldl(fun(P, S) -> maps:put(P, maps:get(P, S, T), S) end, Seen, Pids),
            W1 = lists:foldl(fun(P, W) ->
                case maps:take(P, W) of
                    {From, W2} -> From ! {seen, self(), P, T}, W2;
                    error -> W
                end end, Waiting, Pids),
            watch(S1, W1, Downs, Gone);
        {_Ref, leave, bench, _Pids} ->
            watch(Seen, Waiting, Downs, check_gone(Downs, Gone));
        {nodedown, N} ->
            D1 = maps:put(N, os:system_time(microsecond), Downs),
            watch(Seen, Waiting, D1, check_gone(D1, Gone));
        {nodeup, _} ->
            watch(Seen, Waiting, Downs, Gone);
        {seen, P, From} ->
            case maps:find(P, Seen) of
                {ok, T} -> From ! {seen, self(), P, T}, watch(Seen, Waiting, Downs, Gone);
                error -> watch(Seen, maps:put(P, From, Waiting), Downs, Gone)
            end;
        {watch_gone, N, From} ->
            watch(Seen, Waiting, Downs, check_gone(Downs, [{N, From} | Gone]))
    end.

check_gone(Downs, Gone) ->
    Members = pg:get_members(bench),
    lists:filter(fun({N, From}) ->
        case lists:any(fun(P) -> node(P) =:= N end, Members) of
            true -> true;
            false -> From ! {gone, self(), os:system_time(microsecond), maps:get(N, Downs, 0)}, false
        end end, Gone).
